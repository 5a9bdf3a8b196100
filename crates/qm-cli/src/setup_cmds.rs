//! `qm` setup commands: units, locations, item types, people and their credentials, tokens, policies, CSV import.

use super::*;

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    let who = &cli.who;
    let open = || open_site(cli);
    match &cli.command {
        Cmd::Unit(UnitCmd::Add { id, name, parent }) => {
            let mut s = open()?;
            write(
                &mut s,
                who,
                Command::CreateUnit { unit: p(UnitId::parse(id))?, name: name.clone(), parent: p(UnitId::parse(parent))? },
                out,
            )
        }
        Cmd::Unit(UnitCmd::List) => show(open(), |s| out.units(s)),
        Cmd::Location(LocationCmd::Add {
            id,
            name,
            unit,
            kind,
            parent,
            keeper,
            neq_limit_kg,
            hazard_divisions,
            compatibility_groups,
            distance,
        }) => {
            let kind = p(LocationKind::parse(kind))?;
            let magazine = if kind == LocationKind::Magazine {
                let exposed_sites = distance
                    .iter()
                    .map(|d| {
                        let (k, m) = d.split_once('=').ok_or_else(|| usage(format!("--distance {d:?}: write KIND=METRES")))?;
                        Ok(ExposedSite {
                            kind: k.to_string(),
                            distance_m: m.parse().map_err(|_| usage(format!("--distance {d:?}: {m:?} is not a number")))?,
                        })
                    })
                    .collect::<R<Vec<_>>>()?;
                Some(MagazineLicence {
                    neq_limit_kg: neq_limit_kg.ok_or_else(|| usage("a magazine needs --neq-limit-kg"))?,
                    hazard_divisions: hazard_divisions.clone(),
                    compatibility_groups: compatibility_groups.clone(),
                    exposed_sites,
                })
            } else {
                None
            };
            let mut s = open()?;
            let cmd = Command::CreateLocation {
                location: p(LocationId::parse(id))?,
                name: name.clone(),
                unit: p(UnitId::parse(unit))?,
                parent: parent.as_deref().map(LocationId::parse).transpose().map_err(usage)?,
                kind,
                keeper: keeper.as_deref().map(Badge::parse).transpose().map_err(usage)?,
                magazine,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Location(LocationCmd::Safety { id, flag, temperature_c, humidity_pct, excursion_minutes }) => {
            let mut s = open()?;
            let conditions = if temperature_c.is_some() || humidity_pct.is_some() || excursion_minutes.is_some() {
                Some(qm_core::event::LocationConditions {
                    temperature_c: temperature_c.as_deref().map(safety_cmds::range).transpose()?,
                    humidity_pct: humidity_pct.as_deref().map(safety_cmds::range).transpose()?,
                    excursion_minutes: *excursion_minutes,
                })
            } else {
                None
            };
            write(&mut s, who, Command::SetLocationSafety { location: p(LocationId::parse(id))?, flags: flag.clone(), conditions }, out)
        }
        Cmd::Location(LocationCmd::List) => show(open(), |s| out.locations(s)),
        Cmd::ItemType(ItemTypeCmd::Add { id, name, kind, tracking, unit_of_measure, neq_kg_per_unit, un_code, qualification }) => {
            let mut s = open()?;
            let cmd = Command::DefineItemType {
                item_type: p(ItemTypeId::parse(id))?,
                name: name.clone(),
                kind: p(ItemKind::parse(kind))?,
                tracking: p(Tracking::parse(tracking))?,
                unit_of_measure: unit_of_measure.clone(),
                neq_kg_per_unit: *neq_kg_per_unit,
                un_code: un_code.clone(),
                qualification: qualification.clone(),
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::ItemType(c @ (ItemTypeCmd::Attributes { .. } | ItemTypeCmd::Storage { .. })) => {
            write(&mut open()?, who, storage_command(c)?, out)
        }
        Cmd::ItemType(ItemTypeCmd::List) => show(open(), |s| out.item_types(s)),
        Cmd::Person(PersonCmd::Add { badge, name, unit, roles, new_pin }) => {
            let mut s = open()?;
            let roles = roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>().map_err(usage)?;
            let cmd = Command::RegisterPerson {
                badge: p(Badge::parse(badge))?,
                name: name.clone(),
                unit: p(UnitId::parse(unit))?,
                roles,
                pin_hash: qm_app::hash_secret(new_pin)?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Person(PersonCmd::Qualify { badge, qualification, expires }) => {
            let mut s = open()?;
            let cmd = Command::GrantQualification {
                badge: p(Badge::parse(badge))?,
                qualification: qualification.clone(),
                expires: p(parse_date(expires))?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Person(PersonCmd::Pin { badge, new_pin } | PersonCmd::DuressPin { badge, new_pin }) => {
            let mut s = open()?;
            let kind = match &cli.command {
                Cmd::Person(PersonCmd::DuressPin { .. }) => qm_core::event::CredentialKind::Duress,
                _ => qm_core::event::CredentialKind::Pin,
            };
            let badge = p(Badge::parse(badge))?;
            if kind == qm_core::event::CredentialKind::Duress {
                let pin = s.credential_hash(&badge, qm_core::event::CredentialKind::Pin)?;
                if qm_app::check_secret(new_pin, pin.as_deref()) {
                    return Err(usage("a duress PIN must differ from the PIN: at the door it must mean something else"));
                }
            }
            let cmd = Command::SetCredential { badge, kind, hash: qm_app::hash_secret(new_pin)? };
            write(&mut s, who, cmd, out)
        }
        Cmd::Person(PersonCmd::Password { badge, new_password }) => {
            qm_app::credentials::check_new_password(new_password)?;
            let mut s = open()?;
            let cmd = Command::SetCredential {
                badge: p(Badge::parse(badge))?,
                kind: qm_core::event::CredentialKind::Password,
                hash: qm_app::hash_secret(new_password)?,
            };
            write(&mut s, who, cmd, out)
        }
        Cmd::Token(TokenCmd::Issue { id, label, unit, operations, acts_as }) => {
            let mut s = open()?;
            let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            let cmd = Command::IssueToken {
                token: id.clone(),
                label: label.clone(),
                unit: p(UnitId::parse(unit))?,
                operations: operations.clone(),
                secret_hash: qm_app::hash_secret(&secret)?,
                acts_as: acts_as.as_deref().map(Badge::parse).transpose().map_err(usage)?,
            };
            let outcome = exec(&mut s, who, cmd)?;
            let token = format!("{id}.{secret}");
            out.json_or(&serde_json::json!({"token": token, "first_seq": outcome.first_seq}), || {
                format!("token (shown once; store it now): {token}")
            });
            Ok(0)
        }
        Cmd::Token(TokenCmd::Revoke { id, reason }) => {
            let mut s = open()?;
            write(&mut s, who, Command::RevokeToken { token: id.clone(), reason: reason.clone() }, out)
        }
        Cmd::Person(c @ (PersonCmd::List { .. } | PersonCmd::Suspend { .. } | PersonCmd::Restore { .. } | PersonCmd::Roles { .. })) => {
            people(cli, c, out)
        }
        Cmd::Policy(a) => {
            let mut s = open()?;
            let rules = policy_rules(a)?;
            write(&mut s, who, Command::SetPolicy { unit: p(UnitId::parse(&a.unit))?, rules }, out)
        }
        Cmd::Rules(c) => rules(cli, c, out),
        Cmd::TimeZone { zone } => time_zone(cli, zone.as_deref(), out),
        Cmd::Import { kind, file } => {
            let kind = p(qm_app::import::ImportKind::parse(kind))?;
            let mut s = open()?;
            let actor = sign_in(&mut s, who, "import")?;
            let report =
                output::with_progress(out, |step| qm_app::import::import(&mut s, kind, std::path::Path::new(file), &actor, now(), step))?;
            s.checkpoint_if_grown()?;
            out.json_or(&report, || format!("imported {} rows from {} as {} ledger entries", report.rows, report.file, report.entries));
            Ok(0)
        }
        other => Err(AppError::Internal(format!("{other:?} is not a setup command"))),
    }
}

/// `qm item-type attributes` and `qm item-type storage`: what an item type is, and needs, in store.
fn storage_command(c: &ItemTypeCmd) -> R<Command> {
    Ok(match c {
        ItemTypeCmd::Attributes { id, attributes } => {
            let attributes = attributes.iter().flat_map(|a| a.split(',')).map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
            Command::SetItemTypeAttributes { item_type: p(ItemTypeId::parse(id))?, attributes }
        }
        ItemTypeCmd::Storage { id, temperature_c, humidity_pct } => Command::SetItemTypeStorage {
            item_type: p(ItemTypeId::parse(id))?,
            temperature_c: temperature_c.as_deref().map(safety_cmds::range).transpose()?,
            humidity_pct: humidity_pct.as_deref().map(safety_cmds::range).transpose()?,
        },
        _ => return Err(usage("not an item-type storage command")),
    })
}

/// A unit's standing policy from `qm policy set`; the rest is set by directives for a period
/// (docs/directives.md).
fn policy_rules(a: &PolicyArgs) -> R<PolicyRules> {
    Ok(PolicyRules {
        two_person_explosives: a.two_person_explosives,
        two_person_all_movements: a.two_person_all_movements,
        two_person_count_resolution: a.two_person_count_resolution,
        counter_not_keeper: a.counter_not_keeper,
        counter_not_previous: a.counter_not_previous,
        max_issue_quantity: a.max_issue_quantity.as_deref().map(Quantity::parse).transpose().map_err(usage)?,
        two_person_entry: a.two_person_entry,
        partner_within_min: a.partner_within_min,
        max_inside_min: a.max_inside_min,
        full_count_every_days: a.full_count_every_days,
        ..PolicyRules::default()
    })
}

/// `qm rules adopt KIND FILE` and `qm rules list`: the organization's rules adopted in the ledger.
fn rules(cli: &Cli, c: &RulesCmd, out: &Out) -> R<u8> {
    match c {
        RulesCmd::Adopt { kind, file } => {
            let rules = p(qm_core::event::RulesKind::parse(kind))?;
            let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{file}: {e}")))?;
            write(&mut open_site(cli)?, &cli.who, Command::AdoptRules { rules, text }, out)
        }
        RulesCmd::List => {
            let s = open_site(cli)?;
            let rows: Vec<Vec<String>> = s
                .state()
                .adopted
                .iter()
                .map(|(k, a)| {
                    let by = a.from.clone().unwrap_or_else(|| "this site".into());
                    vec![k.as_str().to_string(), a.entry.to_string(), by, a.text.len().to_string(), qm_app::sha256_hex(a.text.as_bytes())]
                })
                .collect();
            out.json_or(&rows, || output::table(&["rules", "entry", "adopted by", "bytes", "sha256"], rows.clone()));
            Ok(0)
        }
    }
}

/// `qm time-zone [ZONE]`: the site's time zone, or set it.
fn time_zone(cli: &Cli, zone: Option<&str>, out: &Out) -> R<u8> {
    let mut s = open_site(cli)?;
    match zone {
        None => {
            let z = qm_app::zone::SiteZone::of(s.state());
            let now = time::OffsetDateTime::now_utc();
            out.json_or(&serde_json::json!({ "time_zone": z.name, "now": z.show(now) }), || format!("{} (now {})", z.name, z.show(now)));
            Ok(0)
        }
        Some(zone) => write(&mut s, &cli.who, Command::SetTimeZone { zone: zone.to_string() }, out),
    }
}

/// A listing of the books: printed, exit 0.
fn show(site: R<Site>, print: impl FnOnce(&qm_core::State)) -> R<u8> {
    print(site?.state());
    Ok(0)
}

/// The staff list, and people suspended, restored or given other roles (docs/permissions.md, "People").
fn people(cli: &Cli, c: &PersonCmd, out: &Out) -> R<u8> {
    use qm_core::event::PersonChange;
    let (who, open) = (&cli.who, || open_site(cli));
    let (badge, change) = match c {
        PersonCmd::List { unit } => {
            let unit = unit.as_deref().map(UnitId::parse).transpose().map_err(usage)?;
            return show(open(), |s| out.people(s, unit.as_ref()));
        }
        PersonCmd::Suspend { badge, reason } => (badge, PersonChange::Suspended { reason: reason.clone() }),
        PersonCmd::Restore { badge, reason } => (badge, PersonChange::Restored { reason: reason.clone() }),
        PersonCmd::Roles { badge, roles } => {
            let roles = roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>().map_err(usage)?;
            (badge, PersonChange::Roles { roles })
        }
        _ => return Err(usage("not a change of a person")),
    };
    write(&mut open()?, who, Command::ChangePerson { badge: p(Badge::parse(badge))?, change }, out)
}
