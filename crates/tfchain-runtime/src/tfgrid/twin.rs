//! Twins: terms and conditions, creation (one per account) and updates.

use tfgrid_types::AccountId;

use super::{twin_of, validate};
use crate::error::DispatchError;
use crate::event::Event;
use crate::limits::TWIN_PK_LEN_MAX;
use crate::runtime::Ctx;
use crate::types::{TWIN_VERSION, TermsAccepted, Twin};

pub(super) fn accept_terms(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    link: &str,
    hash: &str,
) -> Result<(), DispatchError> {
    validate::terms(link, hash).map_err(DispatchError::InvalidTerms)?;
    let terms = TermsAccepted {
        document_link: link.into(),
        document_hash: hash.into(),
        timestamp_s: ctx.now_s,
    };
    ctx.state.terms_accepted.insert(account, terms);
    ctx.emit(Event::TermsAndConditionsAccepted { account });
    Ok(())
}

fn check_fields(relay: &Option<String>, pk: &Option<Vec<u8>>) -> Result<(), DispatchError> {
    if let Some(relay) = relay {
        validate::relay(relay)
            .map_err(|reason| DispatchError::InvalidRelay(relay.clone(), reason))?;
    }
    if let Some(pk) = pk
        && pk.len() > TWIN_PK_LEN_MAX
    {
        return Err(DispatchError::TwinPkTooLong(pk.len()));
    }
    Ok(())
}

pub(super) fn create(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    relay: &Option<String>,
    pk: &Option<Vec<u8>>,
) -> Result<(), DispatchError> {
    if !ctx.state.terms_accepted.contains(&account) {
        return Err(DispatchError::TermsNotAccepted);
    }
    if let Some(existing) = ctx.state.twin_id_by_account.get(&account) {
        return Err(DispatchError::TwinExists(account, *existing));
    }
    check_fields(relay, pk)?;
    let id = ctx.state.next_id(|c| &mut c.twin);
    let twin = Twin {
        version: TWIN_VERSION,
        id,
        account_id: account,
        relay: relay.clone(),
        pk: pk.clone(),
    };
    ctx.state.twins.insert(id, twin.clone());
    ctx.state.twin_id_by_account.insert(account, id);
    ctx.emit(Event::TwinStored(twin));
    Ok(())
}

pub(super) fn update(
    ctx: &mut Ctx<'_>,
    account: AccountId,
    relay: &Option<String>,
    pk: &Option<Vec<u8>>,
) -> Result<(), DispatchError> {
    let id = twin_of(ctx, &account)?;
    check_fields(relay, pk)?;
    let twin = ctx
        .state
        .twins
        .update(&id, |t| {
            t.relay = relay.clone();
            t.pk = pk.clone();
            t.clone()
        })
        .ok_or(DispatchError::TwinNotFound(id))?;
    ctx.emit(Event::TwinUpdated(twin));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::error::DispatchError;
    use crate::testing::{Harness, account};
    use crate::tfgrid::Call;

    #[test]
    fn twin_rules() {
        let mut h = Harness::new();
        let alice = account("Alice");
        let create = Call::CreateTwin {
            relay: Some("relay.dev.grid.tf".into()),
            pk: None,
        };
        h.fails(&alice, create.clone(), DispatchError::TermsNotAccepted);
        h.fails(
            &alice,
            Call::UserAcceptTc {
                document_link: "".into(),
                document_hash: "h".into(),
            },
            DispatchError::InvalidTerms("the document link must be 1 to 2048 characters"),
        );
        h.ok(
            &alice,
            Call::UserAcceptTc {
                document_link: "https://grid.tf/tc".into(),
                document_hash: "abc".into(),
            },
        );
        h.fails(
            &alice,
            Call::CreateTwin {
                relay: Some(".bad".into()),
                pk: None,
            },
            DispatchError::InvalidRelay(".bad".into(), "has an empty label or a dot at an end"),
        );
        h.fails(
            &alice,
            Call::CreateTwin {
                relay: None,
                pk: Some(vec![0; 129]),
            },
            DispatchError::TwinPkTooLong(129),
        );
        h.ok(&alice, create.clone());
        let id = *h.state().twin_id_by_account.get(&alice).unwrap();
        assert_eq!(id, 1);
        h.fails(&alice, create, DispatchError::TwinExists(alice, 1));
        h.ok(
            &alice,
            Call::UpdateTwin {
                relay: None,
                pk: Some(vec![1, 2, 3]),
            },
        );
        assert_eq!(h.state().twins.get(&1).unwrap().pk, Some(vec![1, 2, 3]));
        h.fails(
            &account("Bob"),
            Call::UpdateTwin {
                relay: None,
                pk: None,
            },
            DispatchError::NoTwin(account("Bob")),
        );
    }
}
