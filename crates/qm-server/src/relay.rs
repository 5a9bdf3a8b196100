//! Up the tree (docs/sites.md, "A grandparent"): a site that mirrors its children's ledgers relays
//! each of them to its own parent — the child's signed checkpoint to the parent's witness with a
//! consistency proof from the size the parent holds, then the child's entries to the parent's
//! mirror — so that headquarters witnesses and mirrors, cosigned, the ledger of every site below
//! it. The server's sync task relays after each exchange of its own; `qm sync` does the same once.

use crate::mirror::{push_entries, Entries};
use crate::sites::{ask_parent, Parent, ParentAnswer};
use crate::worker::SiteHandle;
use std::collections::BTreeMap;

/// The size of each relayed child's ledger that this site's parent holds, witnessed and mirrored,
/// as far as this process knows (after a restart the parent's answers say where it stands).
#[derive(Clone, Debug, Default)]
pub struct Relayed(pub BTreeMap<String, u64>);

/// One child ledger relayed: the size the parent's witness cosigned, and its mirror (if the parent
/// has one configured here).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RelayedChild {
    pub origin: String,
    pub size: u64,
    pub mirrored: Option<u64>,
}

/// Relays every child ledger mirrored here that the parent does not hold whole yet. Each child is
/// tried even when another fails; the failures are returned together.
pub async fn relay_children(
    site: &SiteHandle,
    client: &reqwest::Client,
    parent: &Parent,
    relayed: &mut Relayed,
) -> Result<Vec<RelayedChild>, String> {
    let err = |e: qm_app::AppError| e.to_string();
    let mirrored = site.call(|s| s.mirrored()).await.map_err(err)?.map_err(err)?;
    let (mut done, mut failed) = (vec![], vec![]);
    for m in mirrored {
        let known = relayed.0.get(&m.origin).copied().unwrap_or(0);
        if known >= m.size {
            continue;
        }
        match relay_one(site, client, parent, &m.origin, m.size, known).await {
            Ok(r) => {
                // Known whole only once the parent's mirror holds it (or it has none here).
                if r.mirrored.is_some() || parent.mirror.is_none() {
                    relayed.0.insert(m.origin.clone(), r.size);
                }
                done.push(r);
            }
            Err(e) => failed.push(format!("{}: {e}", m.origin)),
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(format!("relaying child ledgers to the parent: {}", failed.join("; ")))
    }
}

/// One child's ledger, mirrored here up to `size`, to the parent: `held` is what the parent is
/// believed to hold (a 409 corrects it).
async fn relay_one(
    site: &SiteHandle,
    client: &reqwest::Client,
    parent: &Parent,
    origin: &str,
    size: u64,
    mut held: u64,
) -> Result<RelayedChild, String> {
    let err = |e: qm_app::AppError| e.to_string();
    let (from, mut size) = (held, size);
    for _ in 0..3 {
        let o = origin.to_string();
        let Some(req) = site.call(move |s| s.relay_checkpoint_request(&o, held)).await.map_err(err)?.map_err(err)? else { break };
        // The mirror here may have grown since the list was read: this request is for its latest.
        size = req.note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(size);
        match ask_parent(client, &parent.url, req.body()).await? {
            ParentAnswer::Cosigned(_) => held = size,
            ParentAnswer::Holds(n) if n != held => held = n,
            ParentAnswer::Holds(n) => return Err(format!("the parent holds size {n} and refused it again")),
            ParentAnswer::Refused(status, why) => {
                return Err(format!("the parent refused its checkpoint of size {size} ({status}): {why}"))
            }
        }
    }
    if held != size {
        // The parent holds more than this mirror (the child reached it by another route), or its
        // size kept changing: nothing to relay now.
        return match held > size {
            true => Ok(RelayedChild { origin: origin.to_string(), size: held, mirrored: None }),
            false => Err("the parent's size of it kept changing; try again".into()),
        };
    }
    let mirrored = match &parent.mirror {
        Some(m) => {
            push_entries(site, client, &m.url, (from.min(size), size), &Entries::Relayed { origin: origin.to_string() }).await?;
            Some(size)
        }
        None => None,
    };
    Ok(RelayedChild { origin: origin.to_string(), size, mirrored })
}
