//! Integration tests for qm-ledger: reference vectors, property tests against naive RFC 9162
//! definitions, a cross-check with ct-merkle, and signed checkpoint behaviour.

use std::cell::Cell;

use proptest::prelude::*;
use qm_ledger::*;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- helpers

/// In-memory store laid out as the brief describes: each entry keeps the hashes its append created,
/// and a storage index is resolved through `locate_stored_hash`.
#[derive(Default)]
struct MemStore {
    per_entry: Vec<Vec<Hash>>,
    frontier: Frontier,
    reads: Cell<usize>,
}

impl MemStore {
    fn from_leaves(leaves: &[Hash]) -> Self {
        let mut s = MemStore::default();
        for l in leaves {
            let created = s.frontier.push(*l);
            s.per_entry.push(created);
        }
        s
    }
}

impl HashReader for MemStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, LedgerError> {
        self.reads.set(self.reads.get() + indexes.len());
        indexes
            .iter()
            .map(|&idx| {
                let (n, pos) = locate_stored_hash(idx);
                self.per_entry
                    .get(n as usize)
                    .and_then(|v| v.get(pos))
                    .copied()
                    .ok_or_else(|| LedgerError::HashStore(format!("no stored hash {idx}")))
            })
            .collect()
    }
}

fn sha(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn largest_pow2_below(n: usize) -> usize {
    // k < n <= 2k, for n > 1
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 section 2.1.1 MTH, recursively, from leaf hashes.
fn naive_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha(&[]),
        1 => leaves[0],
        n => {
            let k = largest_pow2_below(n);
            let l = naive_mth(&leaves[..k]);
            let r = naive_mth(&leaves[k..]);
            sha(&[&[1u8], &l, &r])
        }
    }
}

/// RFC 9162 section 2.1.3.1 PATH(m, D[n]).
fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return vec![];
    }
    let k = largest_pow2_below(n);
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(naive_mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(naive_mth(&leaves[..k]));
        p
    }
}

/// RFC 9162 section 2.1.4.1 SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { vec![] } else { vec![naive_mth(leaves)] };
    }
    let k = largest_pow2_below(n);
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], b);
        p.push(naive_mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(naive_mth(&leaves[..k]));
        p
    }
}

fn naive_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    naive_subproof(m, leaves, true)
}

fn unhex(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

// ---------------------------------------------------------------- 1. reference vectors

#[derive(serde::Deserialize)]
struct Vectors {
    leaves_hex: Vec<String>,
    roots: std::collections::BTreeMap<String, String>,
    inclusion: Vec<InclusionVector>,
    consistency: Vec<ConsistencyVector>,
}
#[derive(serde::Deserialize)]
struct InclusionVector {
    index: u64,
    tree_size: u64,
    proof_hex: Vec<String>,
}
#[derive(serde::Deserialize)]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    proof_hex: Vec<String>,
}

fn load_vectors() -> (Vectors, Vec<Hash>, MemStore) {
    let text = include_str!("data/merkle-vectors.json");
    let v: Vectors = serde_json::from_str(text).unwrap();
    let leaves: Vec<Hash> = v.leaves_hex.iter().map(|h| leaf_hash(&hex::decode(h).unwrap())).collect();
    let store = MemStore::from_leaves(&leaves);
    (v, leaves, store)
}

fn root_of(v: &Vectors, size: u64) -> Hash {
    unhex(&v.roots[&size.to_string()])
}

#[test]
fn vectors_roots() {
    let (v, leaves, store) = load_vectors();
    assert_eq!(v.roots.len(), leaves.len());
    let mut f = Frontier::new();
    assert_eq!(f.root(), sha(&[]));
    assert_eq!(tree_root(0, &store).unwrap(), sha(&[]));
    for (i, l) in leaves.iter().enumerate() {
        f.push(*l);
        let size = i as u64 + 1;
        let want = root_of(&v, size);
        assert_eq!(f.root(), want, "frontier root size {size}");
        assert_eq!(tree_root(size, &store).unwrap(), want, "tree_root size {size}");
        assert_eq!(Frontier::load(size, &store).unwrap().root(), want);
    }
    assert_eq!(hex::encode(f.root()), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
}

#[test]
fn vectors_inclusion() {
    let (v, leaves, store) = load_vectors();
    assert!(!v.inclusion.is_empty());
    for c in &v.inclusion {
        let want: Vec<Hash> = c.proof_hex.iter().map(|h| unhex(h)).collect();
        let got = prove_inclusion(c.index, c.tree_size, &store).unwrap();
        assert_eq!(got, want, "inclusion {} in {}", c.index, c.tree_size);
        let root = root_of(&v, c.tree_size);
        let leaf = leaves[c.index as usize];
        check_inclusion(&want, c.tree_size, &root, c.index, &leaf).unwrap();

        // Tampering: flip a bit in each proof hash, in the leaf, and in the root.
        for i in 0..want.len() {
            let mut bad = want.clone();
            bad[i][0] ^= 1;
            assert!(matches!(check_inclusion(&bad, c.tree_size, &root, c.index, &leaf), Err(LedgerError::InvalidProof)));
        }
        let mut bad_leaf = leaf;
        bad_leaf[31] ^= 0x80;
        assert!(check_inclusion(&want, c.tree_size, &root, c.index, &bad_leaf).is_err());
        let mut bad_root = root;
        bad_root[5] ^= 4;
        assert!(check_inclusion(&want, c.tree_size, &bad_root, c.index, &leaf).is_err());
        // Extra or missing hashes must fail too.
        let mut longer = want.clone();
        longer.push([7; 32]);
        assert!(check_inclusion(&longer, c.tree_size, &root, c.index, &leaf).is_err());
        if !want.is_empty() {
            assert!(check_inclusion(&want[1..], c.tree_size, &root, c.index, &leaf).is_err());
        }
    }
}

#[test]
fn vectors_consistency() {
    let (v, _leaves, store) = load_vectors();
    assert!(!v.consistency.is_empty());
    for c in &v.consistency {
        let want: Vec<Hash> = c.proof_hex.iter().map(|h| unhex(h)).collect();
        let got = prove_consistency(c.size1, c.size2, &store).unwrap();
        assert_eq!(got, want, "consistency {} -> {}", c.size1, c.size2);
        let r1 = root_of(&v, c.size1);
        let r2 = root_of(&v, c.size2);
        check_consistency(&want, c.size1, &r1, c.size2, &r2).unwrap();

        for i in 0..want.len() {
            let mut bad = want.clone();
            bad[i][31] ^= 1;
            assert!(check_consistency(&bad, c.size1, &r1, c.size2, &r2).is_err());
        }
        if c.size1 != c.size2 {
            let mut bad_old = r1;
            bad_old[0] ^= 1;
            assert!(check_consistency(&want, c.size1, &bad_old, c.size2, &r2).is_err());
        }
        let mut bad_new = r2;
        bad_new[0] ^= 1;
        assert!(check_consistency(&want, c.size1, &r1, c.size2, &bad_new).is_err());
        let mut longer = want.clone();
        longer.push([9; 32]);
        assert!(check_consistency(&longer, c.size1, &r1, c.size2, &r2).is_err());
    }
}

#[test]
fn edge_cases_and_errors() {
    let (_v, leaves, store) = load_vectors();
    let n = leaves.len() as u64;
    assert!(matches!(prove_inclusion(n, n, &store), Err(LedgerError::InvalidInput(_))));
    assert!(matches!(prove_consistency(5, 4, &store), Err(LedgerError::InvalidInput(_))));
    assert!(check_inclusion(&[], 0, &sha(&[]), 0, &leaves[0]).is_err());
    // Empty tree is a prefix of everything, but only with the empty root and empty proof.
    assert_eq!(prove_consistency(0, n, &store).unwrap(), Vec::<Hash>::new());
    let root = tree_root(n, &store).unwrap();
    check_consistency(&[], 0, &sha(&[]), n, &root).unwrap();
    assert!(check_consistency(&[], 0, &[1; 32], n, &root).is_err());
    // A store that lacks hashes surfaces as HashStore, with our message, and never panics.
    let short = MemStore::from_leaves(&leaves[..3]);
    let err = tree_root(8, &short).unwrap_err();
    assert!(matches!(err, LedgerError::HashStore(_)), "{err:?}");
    assert!(err.to_string().starts_with("hash store read failed: "));
    assert!(matches!(prove_inclusion(1, 8, &short), Err(LedgerError::HashStore(_))));
    assert!(matches!(Frontier::load(8, &short), Err(LedgerError::HashStore(_))));
    // A store returning the wrong number of hashes is an error, not a tlog_tiles panic.
    struct Liar;
    impl HashReader for Liar {
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, LedgerError> {
            Ok(vec![])
        }
    }
    assert!(matches!(tree_root(5, &Liar), Err(LedgerError::HashStore(_))));
    assert!(matches!(prove_consistency(3, 5, &Liar), Err(LedgerError::HashStore(_))));
}

#[test]
fn frontier_load_reads_log_many_hashes() {
    let leaves: Vec<Hash> = (0..1000u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let store = MemStore::from_leaves(&leaves);
    for size in [0u64, 1, 2, 3, 511, 512, 999, 1000] {
        store.reads.set(0);
        let f = Frontier::load(size, &store).unwrap();
        assert_eq!(store.reads.get(), size.count_ones() as usize);
        assert_eq!(f.size(), size);
        assert_eq!(f.root(), naive_mth(&leaves[..size as usize]));
    }
    // Appending after a load must continue exactly like the original frontier.
    let mut f = Frontier::load(777, &store).unwrap();
    for (i, l) in leaves[777..].iter().enumerate() {
        assert_eq!(f.push(*l), store.per_entry[777 + i]);
    }
    assert_eq!(f, store.frontier);
}

// ---------------------------------------------------------------- 2. properties

fn leaves_strategy() -> impl Strategy<Value = Vec<Hash>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..300)
        .prop_map(|entries| entries.iter().map(|e| leaf_hash(e)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_roots_match_naive(leaves in leaves_strategy()) {
        let store = MemStore::from_leaves(&leaves);
        prop_assert_eq!(store.frontier.root(), naive_mth(&leaves));
        prop_assert_eq!(store.frontier.size(), leaves.len() as u64);
        for k in 0..=leaves.len() {
            prop_assert_eq!(tree_root(k as u64, &store).unwrap(), naive_mth(&leaves[..k]));
        }
        let loaded = Frontier::load(leaves.len() as u64, &store).unwrap();
        prop_assert_eq!(&loaded, &store.frontier);
    }

    #[test]
    fn prop_inclusion_matches_naive(leaves in leaves_strategy(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        prop_assume!(!leaves.is_empty());
        let store = MemStore::from_leaves(&leaves);
        let size = b.index(leaves.len()) + 1;
        let m = a.index(size);
        let proof = prove_inclusion(m as u64, size as u64, &store).unwrap();
        prop_assert_eq!(&proof, &naive_path(m, &leaves[..size]));
        let root = naive_mth(&leaves[..size]);
        prop_assert!(check_inclusion(&proof, size as u64, &root, m as u64, &leaves[m]).is_ok());
        if size > 1 {
            let other = (m + 1) % size;
            if leaves[other] != leaves[m] {
                prop_assert!(check_inclusion(&proof, size as u64, &root, m as u64, &leaves[other]).is_err());
            }
        }
    }

    #[test]
    fn prop_consistency_matches_naive(leaves in leaves_strategy(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        prop_assume!(!leaves.is_empty());
        let store = MemStore::from_leaves(&leaves);
        let new = b.index(leaves.len()) + 1;
        let old = a.index(new) + 1;
        let proof = prove_consistency(old as u64, new as u64, &store).unwrap();
        prop_assert_eq!(&proof, &naive_proof(old, &leaves[..new]));
        let r_old = naive_mth(&leaves[..old]);
        let r_new = naive_mth(&leaves[..new]);
        prop_assert!(check_consistency(&proof, old as u64, &r_old, new as u64, &r_new).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let last = bad.len() - 1;
            bad[last][0] ^= 0xff;
            prop_assert!(check_consistency(&bad, old as u64, &r_old, new as u64, &r_new).is_err());
        }
    }
}

// ---------------------------------------------------------------- 3. ct-merkle cross-check

#[test]
fn cross_check_ct_merkle() {
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    let mut theirs: MemoryBackedTree<sha2_011::Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut ours = Frontier::new();
    let mut per_entry = Vec::new();
    for i in 0..130u32 {
        let entry = format!("{{\"event\":{i}}}").into_bytes();
        per_entry.push(ours.push(leaf_hash(&entry)));
        theirs.push(entry);
        assert_eq!(ours.root().as_slice(), theirs.root().as_bytes().as_slice(), "size {}", i + 1);
    }
    let store = MemStore { per_entry, frontier: ours, reads: Cell::new(0) };
    let size = theirs.len();
    for idx in [0usize, 1, 63, 64, 100, 129] {
        let proof = prove_inclusion(idx as u64, size, &store).unwrap();
        let theirs_proof = theirs.prove_inclusion(idx);
        assert_eq!(proof.concat(), theirs_proof.as_bytes(), "inclusion {idx}");
        // And their verifier accepts our proof.
        let ip = ct_merkle::InclusionProof::<sha2_011::Sha256>::from_bytes(proof.concat());
        theirs.root().verify_inclusion(theirs.get(idx).unwrap(), idx as u64, &ip).unwrap();
    }
    for additions in [1usize, 2, 66, 129] {
        let old = size - additions as u64;
        let proof = prove_consistency(old, size, &store).unwrap();
        let theirs_proof = theirs.prove_consistency(additions);
        assert_eq!(proof.concat(), theirs_proof.as_bytes(), "consistency {old}");
    }
}

// ---------------------------------------------------------------- 4. keys and checkpoints

fn sample_cp() -> Checkpoint {
    Checkpoint { origin: "quartermaster.example/site-7".into(), size: 1234, root: leaf_hash(b"root") }
}

#[test]
fn checkpoint_roundtrip_and_format() {
    use base64::prelude::{Engine, BASE64_STANDARD};
    let key = SiteKey::generate("quartermaster.example/site-7");
    let cp = sample_cp();
    let note = sign_checkpoint(&key, &cp).unwrap();
    assert_eq!(open_checkpoint(&note, &key.verifier_key()).unwrap(), cp);

    // C2SP tlog-checkpoint body, blank line, one em-dash signature line.
    let body = format!("quartermaster.example/site-7\n1234\n{}\n", BASE64_STANDARD.encode(cp.root));
    assert!(note.starts_with(&body), "{note}");
    let rest = &note[body.len()..];
    let sig_line = rest.strip_prefix('\n').unwrap();
    assert!(sig_line.ends_with('\n'));
    let sig_line = sig_line.strip_suffix('\n').unwrap();
    assert!(!sig_line.contains('\n'));
    let sig_b64 = sig_line.strip_prefix("\u{2014} quartermaster.example/site-7 ").unwrap();
    let sig = BASE64_STANDARD.decode(sig_b64).unwrap();
    assert_eq!(sig.len(), 4 + 64); // key hash + Ed25519 signature
    let vk = key.verifier_key();
    // base64 may itself contain '+', so split only twice.
    let parts: Vec<&str> = vk.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], key.name());
    assert_eq!(parts[1], hex::encode(&sig[..4]));
    let pk = BASE64_STANDARD.decode(parts[2]).unwrap();
    assert_eq!(pk.len(), 33);
    assert_eq!(pk[0], 0x01);

    // Size 0 / empty root are fine and decimal.
    let empty = Checkpoint { origin: "o".into(), size: 0, root: tree_root(0, &MemStore::default()).unwrap() };
    let n = sign_checkpoint(&key, &empty).unwrap();
    assert!(n.starts_with("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n"));
    assert_eq!(open_checkpoint(&n, &key.verifier_key()).unwrap(), empty);
}

#[test]
fn checkpoint_rejects_wrong_key_and_tampering() {
    let key = SiteKey::generate("site");
    let other = SiteKey::generate("site");
    let note = sign_checkpoint(&key, &sample_cp()).unwrap();
    assert!(open_checkpoint(&note, &other.verifier_key()).is_err());
    assert!(open_checkpoint(&note, "not a key").is_err());

    // Change each byte of the body in turn (to another printable byte): all must fail.
    let body_len = note.find("\n\n").unwrap() + 1;
    let bytes = note.as_bytes();
    for i in 0..body_len {
        let mut t = bytes.to_vec();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        assert!(open_checkpoint(&t, &key.verifier_key()).is_err(), "byte {i}");
    }
    // A signature-only note by another key is not accepted either.
    let forged = sign_checkpoint(&other, &sample_cp()).unwrap();
    assert!(open_checkpoint(&forged, &key.verifier_key()).is_err());
    // Bad origins are refused at signing.
    let mut cp = sample_cp();
    cp.origin = "a\nb".into();
    assert!(sign_checkpoint(&key, &cp).is_err());
    cp.origin = String::new();
    assert!(sign_checkpoint(&key, &cp).is_err());
}

#[test]
fn key_file_permissions_and_redaction() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.key");
    let key = SiteKey::generate("site-7");
    key.write_new(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Refuses to overwrite.
    let err = key.write_new(&path).unwrap_err();
    assert!(matches!(err, LedgerError::KeyFileExists(_)));
    assert!(err.to_string().contains("already exists"));

    let back = SiteKey::read(&path).unwrap();
    assert_eq!(back.name(), "site-7");
    assert_eq!(back.verifier_key(), key.verifier_key());
    let note = sign_checkpoint(&back, &sample_cp()).unwrap();
    assert_eq!(open_checkpoint(&note, &key.verifier_key()).unwrap(), sample_cp());

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SiteKey::read(&path).unwrap_err();
    assert!(matches!(err, LedgerError::KeyFilePermissions { .. }), "{err:?}");

    // Debug shows neither the raw secret nor its base64 form.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("PRIVATE+KEY+site-7+"));
    let secret_b64 = text.trim().splitn(5, '+').nth(4).unwrap().to_owned();
    let secret = {
        use base64::prelude::{Engine, BASE64_STANDARD};
        BASE64_STANDARD.decode(&secret_b64).unwrap()[1..].to_vec()
    };
    let dbg = format!("{key:?} {back:?}");
    assert!(!dbg.contains(&secret_b64));
    assert!(!dbg.contains(&hex::encode(secret.as_slice())));
    assert!(!dbg.contains(&format!("{:?}", secret)));
    assert!(!dbg.contains(format!("{:?}", &secret[..8]).trim_end_matches(']')));
    assert!(dbg.contains("redacted"));

    // Malformed or mismatched key files are refused.
    let bad = dir.path().join("bad.key");
    let mut tampered = text.clone();
    tampered.replace_range(19..20, if &text[19..20] == "0" { "1" } else { "0" });
    for (i, content) in ["garbage\n".to_string(), tampered].iter().enumerate() {
        let p = bad.with_extension(i.to_string());
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(SiteKey::read(&p), Err(LedgerError::MalformedKey(_))));
    }
}
