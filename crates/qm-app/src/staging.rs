//! Staging: a request is decided against the books, stamped, encoded into entries and folded into
//! the books; a batch of them becomes one commit (group commit), all or nothing where asked.

use crate::*;

/// Where staged entries come from: who, witnessed by whom, under which idempotency key, bound to
/// which request (`Request::digest`, on the first entry), and when.
pub(crate) struct Origin<'a> {
    pub(crate) actor: &'a Badge,
    pub(crate) witness: Option<&'a Badge>,
    /// The API token the request came through, if any (recorded on its entries).
    pub(crate) token: Option<&'a str>,
    pub(crate) key: &'a str,
    pub(crate) request: Option<String>,
    pub(crate) at: OffsetDateTime,
}

/// The incidents a decision opens by itself in the entry of its `i`-th event.
fn take_opens(opens: &mut Vec<(usize, Event)>, i: usize) -> Vec<Event> {
    if opens.is_empty() {
        return vec![];
    }
    let (here, rest): (Vec<_>, Vec<_>) = std::mem::take(opens).into_iter().partition(|(at, _)| *at == i);
    *opens = rest;
    here.into_iter().map(|(_, e)| e).collect()
}

impl Site {
    /// The context a request is decided in: who acts (and through which token), who witnesses,
    /// when, and the site's local time then.
    pub(crate) fn ctx(&self, req: &Request) -> Ctx {
        let zone = zone::SiteZone::of(&self.state).at(req.at);
        Ctx { token: req.token.clone(), actor: req.actor.clone(), witness: req.witness.clone(), at: req.at, zone }
    }

    /// Decides a request against the books exactly as `execute` would and records nothing: the
    /// entries it would append, unnumbered (the counter's preview). A refusal is only returned.
    pub fn preview(&self, req: &Request) -> std::result::Result<Vec<Envelope>, Rejection> {
        let decision = decide(&self.state, &self.ctx(req), &req.command)?;
        let site = self.site_name();
        let mut opens = decision.opens;
        Ok(decision
            .events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Envelope {
                site: site.clone(),
                seq: 0,
                at: req.at,
                actor: req.actor.clone(),
                witness: req.witness.clone(),
                token: req.token.clone(),
                idempotency_key: String::new(),
                request: None,
                corrects: None,
                event,
                opens: take_opens(&mut opens, i),
            })
            .collect())
    }

    /// Runs one command and commits it durably.
    pub fn execute(&mut self, req: Request) -> Result<Outcome> {
        self.execute_batch(vec![req]).into_iter().next().unwrap_or_else(|| Err(AppError::Internal("empty batch result".into())))
    }

    /// Group commit: validates each request in order against the books as the earlier ones left
    /// them, then commits all accepted ones in one durable transaction. A refused request does
    /// not fail the others; if the commit itself fails, every accepted request fails with it.
    pub fn execute_batch(&mut self, reqs: Vec<Request>) -> Vec<Result<Outcome>> {
        // Another writer may append between our reading the books and our commit (on PostgreSQL,
        // e.g. the session of a server killed just after it sent COMMIT finishes it after a new
        // server has started). The commit then fails with `Conflict` and nothing of it is written;
        // the books are re-read and the batch is validated once more against them.
        let results = self.execute_batch_once(&reqs);
        let conflicted = results.iter().any(|r| matches!(r, Err(AppError::Store(StoreError::Conflict { .. }))));
        if conflicted && !self.is_stale() {
            return self.execute_batch_once(&reqs);
        }
        results
    }

    pub(crate) fn execute_batch_once(&mut self, reqs: &[Request]) -> Vec<Result<Outcome>> {
        let (mut results, accepted, commit) = self.stage_batch(reqs);
        let Some(commit) = commit else { return results };
        if let Err(err) = self.flush_or_reload(commit) {
            for i in accepted {
                results[i] = Err(same_error(&err));
            }
        }
        results
    }

    /// Validates and stages a batch: results, the indexes of accepted requests, and the commit to write.
    #[allow(clippy::type_complexity)]
    pub(crate) fn stage_batch(&mut self, reqs: &[Request]) -> (Vec<Result<Outcome>>, Vec<usize>, Option<Commit>) {
        if let Err(e) = self.ensure_fresh() {
            return (reqs.iter().map(|_| Err(same_error(&e))).collect(), vec![], None);
        }
        let mut results: Vec<Result<Outcome>> = Vec::with_capacity(reqs.len());
        let mut commit = Commit::default();
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        let mut accepted = vec![];
        let keys: Vec<&str> = reqs.iter().map(|r| r.idempotency_key.trim()).collect();
        let used = match self.store.used_idempotency_keys(&keys) {
            Ok(u) => u,
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    // The writer's connection went the same way: it finishes what it holds and
                    // stops; the next writer (or direct commit) connects afresh.
                    self.stop_writer();
                }
                let e = AppError::Store(match e {
                    StoreError::Unavailable(m) => StoreError::Unavailable(format!("reading idempotency keys: {m}")),
                    other => StoreError::Backend(format!("reading idempotency keys: {other}")),
                });
                return (reqs.iter().map(|_| Err(same_error(&e))).collect(), vec![], None);
            }
        };
        for req in reqs {
            let r = self.stage_request(req, &mut commit, &in_batch, &results, Some(&used));
            if let Ok(o) = &r {
                if !o.replayed {
                    accepted.push(results.len());
                    in_batch.insert(req.idempotency_key.clone(), results.len());
                }
            }
            if let Err(AppError::Internal(_)) = &r {
                return (self.abandon(results.len() + 1, r), vec![], None);
            }
            results.push(r);
        }
        let commit = self.has_staged(&commit).then_some(commit);
        (results, accepted, commit)
    }

    pub(crate) fn abandon(&mut self, n: usize, err: Result<Outcome>) -> Vec<Result<Outcome>> {
        let msg = match err {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        self.resync();
        (0..n).map(|_| Err(AppError::Internal(format!("batch abandoned, nothing was recorded: {msg}")))).collect()
    }

    /// `used`: the batch's keys already in the store, when known; otherwise the store is asked.
    pub(crate) fn stage_request(
        &mut self,
        req: &Request,
        commit: &mut Commit,
        in_batch: &HashMap<String, usize>,
        earlier: &[Result<Outcome>],
        used: Option<&HashSet<String>>,
    ) -> Result<Outcome> {
        let key = req.idempotency_key.trim();
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX {
            return Err(AppError::Usage(format!("an idempotency key has 1 to {IDEMPOTENCY_KEY_LEN_MAX} characters")));
        }
        if let Some(i) = in_batch.get(key) {
            if let Some(Ok(o)) = earlier.get(*i) {
                req.owns(&o.entries)?;
                return Ok(Outcome { replayed: true, ..o.clone() });
            }
        }
        if let Some(o) = self.in_flight.get(key) {
            req.owns(&o.entries)?;
            return Ok(Outcome { replayed: true, ..o.clone() });
        }
        let maybe_used = used.is_none_or(|u| u.contains(key));
        if let Some((first, last)) = if maybe_used { self.store.find_idempotency_key(key)? } else { None } {
            let entries = self.read_envelopes(first, last)?;
            req.owns(&entries)?;
            return Ok(Outcome { first_seq: first, last_seq: last, replayed: true, entries: entries.into() });
        }
        if let Command::SetTimeZone { zone } = &req.command {
            zone::SiteZone::get(zone)?;
        }
        let decision = match decide(&self.state, &self.ctx(req), &req.command) {
            Ok(d) => d,
            Err(r) if r.is_denial() => {
                // A denied attempt leaves a trace in the ledger (who, what, when); the command itself appends nothing.
                let reason = match &r {
                    Rejection::Refused { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                let denied = self.denial(req.actor.to_string(), req.command.name().to_string(), reason, req.at);
                let token = req.token.as_deref();
                let origin = Origin { actor: &req.actor, witness: None, token, key: &format!("denied-{key}"), request: None, at: req.at };
                self.stage(origin, denied, commit)?;
                return Err(r.into());
            }
            Err(r) => {
                // A storage-safety refusal is an attempt to store what may not be stored there: the
                // incident it opens is recorded; the command itself appends nothing.
                if let Some(refused) = self.refusal_recorded(req, &r) {
                    let token = req.token.as_deref();
                    let origin =
                        Origin { actor: &req.actor, witness: None, token, key: &format!("refused-{key}"), request: None, at: req.at };
                    self.stage(origin, refused, commit)?;
                }
                return Err(r.into());
            }
        };
        let origin = Origin {
            actor: &req.actor,
            witness: req.witness.as_ref(),
            token: req.token.as_deref(),
            key,
            request: Some(req.digest()),
            at: req.at,
        };
        let outcome = self.stage(origin, decision, commit)?;
        commit.credentials.extend(credentials::changes(&req.command, &outcome.entries));
        Ok(outcome)
    }

    /// What a refusal that is not a denial records: the incident a storage-safety refusal opens
    /// (`qm_core::decide::refusal_incident`), if the incident rules open one.
    pub(crate) fn refusal_recorded(&self, req: &Request, r: &Rejection) -> Option<Decision> {
        let e = qm_core::decide::refusal_incident(&self.state, &self.ctx(req), &req.command, r)?;
        Some(Decision { events: vec![e], corrects: None, opens: vec![] })
    }

    /// A denied attempt as a decision: the `access_denied` entry, with the incident it opens under
    /// the incident rules (`qm_core::incidents::openings`).
    pub(crate) fn denial(&self, who: String, operation: String, reason: String, at: OffsetDateTime) -> Decision {
        let events = vec![Event::AccessDenied { who, operation, reason }];
        let opens = qm_core::incidents::openings(&self.state, &events, at);
        Decision { events, corrects: None, opens }
    }

    /// Turns a decision into entries, applies them to the books and adds them to the commit.
    pub(crate) fn stage(&mut self, origin: Origin, decision: Decision, commit: &mut Commit) -> Result<Outcome> {
        let Origin { actor, witness, token, key, request, at } = origin;
        let site = match (&self.state.site, decision.events.first()) {
            (Some(s), _) => s.site.clone(),
            (None, Some(Event::SiteInitialized { site, .. })) => site.clone(),
            (None, _) => return Err(AppError::Internal("site is not initialized".into())),
        };
        let at = self.stamp(at)?;
        let first = self.state.next_seq;
        let mut entries = vec![];
        let n = decision.events.len();
        let mut opens = decision.opens;
        for (i, event) in decision.events.into_iter().enumerate() {
            let env = Envelope {
                site: site.clone(),
                seq: self.state.next_seq,
                at,
                actor: actor.clone(),
                witness: witness.cloned(),
                token: token.map(str::to_string),
                idempotency_key: key.to_string(),
                request: if i == 0 { request.clone() } else { None },
                // The correction reference sits on the last entry, the reverse movement itself.
                corrects: if i + 1 == n { decision.corrects.clone() } else { None }.map(|c: Correction| c),
                event,
                opens: take_opens(&mut opens, i),
            };
            self.state.apply(&env).map_err(|e| AppError::Internal(e.to_string()))?;
            entries.push(env);
        }
        let entries: std::sync::Arc<[Envelope]> = entries.into();
        // Encoded and hashed by the writer thread while it runs (see `write_in_order`), here otherwise.
        if self.writer.is_some() {
            self.unencoded.push(entries.clone());
        } else {
            append_entries(&mut self.frontier, std::slice::from_ref(&entries), &mut commit.entries).map_err(AppError::Internal)?;
        }
        Ok(Outcome { first_seq: first, last_seq: self.state.next_seq.saturating_sub(1), replayed: false, entries })
    }

    /// The time an entry asked to be stamped at `at` is recorded at. Time only moves forward in a
    /// ledger: a clock behind the latest entry by up to [`CLOCK_SKEW_TOLERATED`] (two processes
    /// whose stamps crossed on the way to the database) is recorded at the latest entry's time;
    /// further behind, the clock was stepped back and the entry is refused (rule `time.forward`).
    pub(crate) fn stamp(&self, at: OffsetDateTime) -> Result<OffsetDateTime> {
        match self.state.last_at {
            Some(last) if at < last - CLOCK_SKEW_TOLERATED => Err(AppError::Rejected(Rejection::Refused {
                rule: "time.forward",
                message: format!(
                    "the clock reads {} but the ledger's latest entry (seq {}) is stamped {}; time only moves forward in a \
                     ledger: set the clock right and try again",
                    qm_ledger_time(at),
                    self.state.next_seq.saturating_sub(1),
                    qm_ledger_time(last)
                ),
            })),
            Some(last) if at < last => Ok(last),
            _ => Ok(at),
        }
    }

    /// The projection rows changed since the last commit was staged, for the next one.
    pub(crate) fn touched_rows(&mut self) -> Vec<RowChange> {
        self.state.take_touched().into_iter().map(|(k, v)| RowChange { kind: k.kind.to_string(), key: k.key, value: v }).collect()
    }

    pub(crate) fn flush(&mut self, mut commit: Commit) -> Result<()> {
        commit.rows = self.touched_rows();
        // While the writer thread runs, every commit goes through it: it encodes the entries, may
        // hold rows back, and writes in order from one connection only.
        if self.writer.is_some() {
            let done = self.hand_over(commit);
            let edge = done.recv().unwrap_or_else(|_| Err(writer_stopped()))?;
            self.adopt(Some(edge));
            return Ok(());
        }
        self.store.commit(&commit)?;
        Ok(())
    }

    /// Whether a commit being staged holds entries (encoded, or handed to the writer to encode).
    pub(crate) fn has_staged(&self, commit: &Commit) -> bool {
        !commit.entries.is_empty() || !self.unencoded.is_empty()
    }

    /// After a commit returned an error: re-reads the books and tells whether the commit landed after
    /// all (the connection can drop after the database committed). `None`: it landed, report success.
    /// Otherwise the error to report: nothing recorded, or — when the database is away and that cannot
    /// be told — that the outcome is unknown and the same idempotency key must be retried.
    pub(crate) fn commit_failed(&mut self, e: impl Into<AppError>, key: &str) -> Option<AppError> {
        let e: AppError = e.into();
        if matches!(e, AppError::Store(StoreError::Unavailable(_))) {
            // A connection failed: the books are re-read only through a fresh one (another
            // connection of this process may be half-broken too, or answer from before the failure).
            self.reconnect();
        }
        // A writer thread whose commit failed fails every batch queued after it (they were staged
        // on top of it); `resync` stops it and re-reads the books.
        self.resync();
        if self.stale.is_some() {
            return Some(AppError::Store(StoreError::Unavailable(format!(
                "the commit did not complete ({e}); whether it was recorded is not known until the database is back: \
                 retry with the same idempotency key"
            ))));
        }
        if !key.is_empty() && self.store.used_idempotency_keys(&[key]).is_ok_and(|u| u.contains(key)) {
            return None;
        }
        Some(match e {
            AppError::Store(StoreError::Unavailable(m)) => {
                AppError::Store(StoreError::Unavailable(format!("the commit did not complete, nothing was recorded: {m}")))
            }
            AppError::Store(StoreError::Conflict { seq }) => AppError::Store(StoreError::Conflict { seq }),
            other => AppError::Internal(format!("commit failed, nothing was recorded: {other}")),
        })
    }

    /// Records one request with data kept outside the ledger (readings, door events) in one durable
    /// transaction: `attach` adds that data to the commit once the request is decided and new (not
    /// a retry), knowing the entries' sequence numbers.
    pub(crate) fn record_with_data(&mut self, req: &Request, attach: impl FnOnce(&Outcome, &mut Commit)) -> Result<Outcome> {
        let ticket = self.submit_with_data(req, attach);
        self.finish(ticket).pop().unwrap_or_else(|| Err(AppError::Internal("a request of one had no result".into())))
    }

    /// Commits; if the commit fails, reloads the books and reports the error — or success when
    /// the commit landed after all (see `commit_failed`). Every path that commits staged work uses it.
    pub(crate) fn flush_or_reload(&mut self, commit: Commit) -> Result<()> {
        let first_key = commit
            .entries
            .first()
            .map(|e| e.idempotency_key.clone())
            .or_else(|| self.unencoded.first().and_then(|seg| seg.first()).map(|e| e.idempotency_key.clone()))
            .unwrap_or_default();
        if let Err(e) = self.flush(commit) {
            return self.commit_failed(e, &first_key).map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Runs requests all or nothing (an import): the first refusal discards them all.
    pub fn execute_all_or_nothing(
        &mut self,
        reqs: Vec<Request>,
        progress: &mut dyn FnMut(u64),
    ) -> std::result::Result<Vec<Outcome>, (usize, AppError)> {
        self.ensure_fresh().map_err(|e| (0, e))?;
        let mut commit = Commit::default();
        let mut outcomes = vec![];
        let in_batch = HashMap::new();
        for (i, req) in reqs.iter().enumerate() {
            match self.stage_request(req, &mut commit, &in_batch, &[], None) {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    self.resync();
                    // Nothing of the batch is recorded, but a denial of authority still is.
                    if let AppError::Rejected(r @ Rejection::Refused { message, .. }) = &e {
                        if r.is_denial() {
                            let d = Denial {
                                who: req.actor.to_string(),
                                operation: req.command.name().into(),
                                reason: message.clone(),
                                at: req.at,
                            };
                            self.record_denial_now(d).map_err(|e| (i, e))?;
                        } else if let Some(refused) = self.refusal_recorded(req, r) {
                            self.record_refusal_now(req, refused).map_err(|e| (i, e))?;
                        }
                    }
                    return Err((i, e));
                }
            }
            progress(1);
        }
        if self.has_staged(&commit) {
            self.flush_or_reload(commit).map_err(|e| (reqs.len(), e))?;
        }
        Ok(outcomes)
    }
}
