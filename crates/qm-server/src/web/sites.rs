//! The child sites pages (docs/sites.md): for headquarters, every site it witnesses, the latest
//! checkpoint cosigned for it and how old, the ones whose history was rewritten, how much of each
//! ledger its mirror holds, and each site's books as its mirrored ledger replays them.

use crate::views::page;
use crate::web::*;
use axum::extract::Path;
use std::collections::BTreeMap;

pub(crate) async fn sites_page(Visitor { st, p, .. }: Visitor) -> WebResult {
    let list = crate::sites::sites(&st, &p).await?;
    let span = crate::sites::span(&st, &p).await?;
    let transfers = crate::sites::site_transfers(&st, &p).await?;
    let books: BTreeMap<&str, &qm_app::span::ChildRow> = span.sites.iter().map(|r| (r.origin.as_str(), r)).collect();
    let body = html! {
        @if st.witness.is_none() { p.hint #no-children { "This site witnesses no child sites (qm serve --children FILE, docs/sites.md)." } }
        @else {
            table #sites {
                thead { tr { th { "Site" } th { "Unit" } th { "State" } th.n { "Entries cosigned" } th { "Cosigned" } th.n { "Hours since" } th.n { "Entries mirrored" } th.n { "Backlog" }
                    th.n { "Units" } th.n { "Open incidents" } th.n { "In transit" } th.n { "Issued" } } }
                tbody { @for v in &list { tr.(format!("site-{}", v.state)) {
                    td { @if books.contains_key(v.origin.as_str()) { a href=(format!("/sites/{}", v.origin)) { strong { (v.origin) } } } @else { strong { (v.origin) } } }
                    td { (v.unit) }
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
                    @match books.get(v.origin.as_str()) {
                        Some(b) => {
                            td.n { (b.units) }
                            td.n { @if b.incidents_critical > 0 { span.bad { (b.incidents_open) " (" (b.incidents_critical) " critical)" } } @else { (b.incidents_open) } }
                            td.n { (b.in_transit) } td.n { (b.issued) }
                        }
                        None => { td.n { "—" } td.n { "—" } td.n { "—" } td.n { "—" } }
                    }
                } } }
            }
            p.hint { "A site is silent when no checkpoint of it was cosigned for " (qm_app::sites::SILENT_AFTER_H) " hours; rewritten when it offered a checkpoint signed with its key that contradicts one cosigned before (qm witness evidence). Entries mirrored: the site's entries held here, replayed and cosigned by this site's mirror; the backlog is what was witnessed and not yet mirrored. Units, incidents, transfers and items issued are the site's own books as its mirrored entries replay them." }
            h2 { "Transfers between sites" }
            @if transfers.is_empty() { p.hint #no-site-transfers { "No transfer between the sites below is in transit or received." } }
            @else {
                table #site-transfers-across {
                    thead { tr { th { "Transfer" } th { "To site" } th { "Status" } th.n { "Hours since dispatch" } th { "Lines, or what differs" } } }
                    tbody { @for t in &transfers { tr.(format!("transfer-{}", t.status)) {
                        td { (t.id) } td { (t.to_site) " (" (t.to_unit) ")" }
                        td { @match t.status { "mismatch" => span.bad { "received with differences" }, "overdue" => span.bad { "overdue" }, "awaited" => span.warn { "awaited" }, _ => span.good { "received as sent" } } }
                        td.n { (t.hours) }
                        td { @if t.differences.is_empty() { (t.lines.join(", ")) } @else { (t.differences.join("; ")) } }
                    } } }
                }
                p.hint { "Matched from both sites' mirrored ledgers: a transfer in transit at one site to a unit another site serves, and that site's receipt from origin/transfer. Overdue: not received " (qm_app::across::RECEIPT_DUE_H) " hours after its dispatch." }
            }
            h2 { "Stock over every site" }
            @if span.totals.is_empty() { p.hint #no-span-stock { "No site's stock is mirrored here yet." } }
            @else {
                table #span-stock {
                    thead { tr { th { "Item type" } th.n { "Total" } th.n { "Sites holding" } th { "Most at" } } }
                    tbody { @for t in &span.totals {
                        @let most = t.per_site.iter().max_by_key(|(_, q)| qm_core::Quantity::parse(q).unwrap_or_default());
                        tr { td { (t.item_type) } td.n { (t.total) " " (t.unit_of_measure) } td.n { (t.per_site.len()) }
                             td { @if let Some((o, q)) = most { a href=(format!("/sites/{o}")) { (o) } " (" (q) ")" } } }
                    } }
                }
            }
        }
    };
    Ok(page("Child sites", Some(&p), "/sites", body).into_response())
}

/// One child site's books, as its mirrored ledger replays them.
pub(crate) async fn site_books_page(Visitor { st, p, .. }: Visitor, Path(origin): Path<String>) -> WebResult {
    let b = crate::sites::child_books(&st, &p, origin).await?;
    let r = &b.row;
    let body = html! {
        p #site-books-as-of { "The books of site " strong { (r.origin) } " (root unit " (r.root_unit.as_deref().unwrap_or("—")) ", serving unit " (r.unit) " here) as its "
            (r.mirrored) " mirrored entries replay them; the mirror cosigned them on " (r.mirrored_at) ". Read only: the site records its own movements." }
        p { a href="/sites" { "← all child sites" } }
        h2 { "Stock" }
        @if b.stock.is_empty() { p.hint { "Nothing held." } }
        @else {
            table #site-stock {
                thead { tr { th { "Unit" } th { "Held at / by" } th { "Item type" } th { "Lot" } th { "Status" } th.n { "Quantity" } } }
                tbody { @for l in &b.stock { tr { td { (l.unit) } td { (l.account) } td { (l.item_type) } td { (l.lot.as_deref().unwrap_or("")) } td { (l.status.as_deref().unwrap_or("")) } td.n { (l.quantity) " " (l.unit_of_measure) } } } }
            }
        }
        h2 { "Open incidents (" (b.incidents.len()) ")" }
        @if b.incidents.is_empty() { p.hint { "None." } }
        @else { table #site-incidents {
            thead { tr { th { "Incident" } th { "Severity" } th { "Kind" } th { "Unit" } th { "Summary" } th { "Opened" } } }
            tbody { @for i in &b.incidents { tr { td { (i.id) } td { @if i.severity == "critical" { span.bad { (i.severity) } } @else { (i.severity) } } td { (i.kind) } td { (i.unit) } td { (i.summary) } td { (i.opened_at) } } } }
        } }
        h2 { "Transfers in transit (" (b.transfers.len()) ")" }
        @if b.transfers.is_empty() { p.hint { "None." } }
        @else { table #site-transfers {
            thead { tr { th { "Transfer" } th { "From" } th { "To" } th { "Dispatched" } th { "Lines" } } }
            tbody { @for t in &b.transfers { tr { td { (t.transfer) } td { (t.from_unit) } td { (t.to_unit) } td { (t.dispatched_at) } td { (t.lines.join(", ")) } } } }
        } }
        h2 { "Directives in force (" (b.directives.len()) ")" }
        @if b.directives.is_empty() { p.hint { "None." } }
        @else { table #site-directives {
            thead { tr { th { "Directive" } th { "Title" } th { "Posture" } th.n { "Units acknowledged" } } }
            tbody { @for d in &b.directives { tr { td { (d.id) } td { (d.title) } td { (d.posture) } td.n { (d.units_acknowledged) " of " (d.units_concerned) } } } }
        } }
    };
    Ok(page(&format!("Site {}", r.origin), Some(&p), "/sites", body).into_response())
}
