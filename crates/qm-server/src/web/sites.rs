//! The child sites page (docs/sites.md): for headquarters, every site it witnesses, the latest
//! checkpoint cosigned for it and how old, the ones whose history was rewritten, and how much of
//! each ledger its mirror holds.

use crate::views::page;
use crate::web::*;

pub(crate) async fn sites_page(Visitor { st, p, .. }: Visitor) -> WebResult {
    let list = crate::sites::sites(&st, &p).await?;
    let body = html! {
        @if st.witness.is_none() { p.hint #no-children { "This site witnesses no child sites (qm serve --children FILE, docs/sites.md)." } }
        @else {
            table #sites {
                thead { tr { th { "Site" } th { "Unit" } th { "State" } th.n { "Entries cosigned" } th { "Cosigned" } th.n { "Hours since" } th.n { "Entries mirrored" } th.n { "Backlog" } } }
                tbody { @for v in &list { tr.(format!("site-{}", v.state)) {
                    td { strong { (v.origin) } } td { (v.unit) }
                    td { @match v.state {
                        "rewritten" => a href="/incidents?kind=ledger_fork" { span.bad { "REWRITTEN — " (v.evidence) " contradicting checkpoint(s) kept" } },
                        "silent" => span.warn { "silent" },
                        "never" => span.warn { "never synced" },
                        _ => span.good { "consistent" },
                    } }
                    td.n { (v.size.map_or("—".to_string(), |s| s.to_string())) }
                    td { (v.cosigned_at.as_deref().unwrap_or("—")) }
                    td.n { (v.age_h.map_or("—".to_string(), |h| h.to_string())) }
                    td.n { (v.mirrored) }
                    td.n { @if v.backlog > 0 { span.warn { (v.backlog) } } @else { "0" } }
                } } }
            }
            p.hint { "A site is silent when no checkpoint of it was cosigned for " (qm_app::sites::SILENT_AFTER_H) " hours; rewritten when it offered a checkpoint signed with its key that contradicts one cosigned before (qm witness evidence). Entries mirrored: the site's entries held here, replayed and cosigned by this site's mirror; the backlog is what was witnessed and not yet mirrored." }
        }
    };
    Ok(page("Child sites", Some(&p), "/sites", body).into_response())
}
