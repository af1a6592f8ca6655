//! What the hostile-client suites share: a server with users in two
//! counties, and ways to write records directly with a device's own actor
//! (as an outside client would), push them and read the verdict.

use crate::{Phone, TestServer, photo_ref, toilet_answers};
use automerge::transaction::Transaction;
use automerge::{ActorId, Automerge, ROOT, ReadDoc};
use fieldbook_core::doc::RecordKind;
use fieldbook_core::model::{Role, SiteKind};
use fieldbook_core::store::{NewFinding, NewSite, Store};
use fieldbook_core::sync::Transport;
use fieldbook_core::sync::wire::{
    Item, ItemKind, RejectCode, SyncRequest, SyncResponse, doc_id_bytes,
};

pub const COUNTY_A: &str = "410324";
pub const COUNTY_B: &str = "410325";
pub const VILLAGE_A: &str = "410324101201";
pub const VILLAGE_B: &str = "410325101201";

pub fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("li.wei", Role::Inspector, &[COUNTY_A]);
    s.add_user("zhao.lei", Role::Inspector, &[COUNTY_B]);
    s.add_user("wang.fang", Role::Supervisor, &[COUNTY_A]);
    s.add_user("sun.li", Role::Supervisor, &[COUNTY_B]);
    s.add_user("zhou.min", Role::CountyOffice, &[COUNTY_A]);
    s.add_user("admin.a", Role::Admin, &[COUNTY_A]);
    s.add_user("root", Role::Admin, &["*"]);
    s
}

pub use crate::server_state as state;

pub fn actor(p: &Phone) -> ActorId {
    ActorId::from(
        (0..32)
            .step_by(2)
            .map(|i| u8::from_str_radix(&Store::prepare(&p.dir).unwrap()[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
}

pub fn push(p: &mut Phone, items: Vec<Item>) -> SyncResponse {
    let req = SyncRequest {
        cursor: 0,
        page_bytes: 0,
        items,
    };
    SyncResponse::decode(&p.transport.sync(&req.encode()).unwrap()).unwrap()
}

/// Pushes one item and returns the server's verdict on it.
pub fn verdict(p: &mut Phone, item: Item) -> Result<(), (RejectCode, String)> {
    let resp = push(p, vec![item]);
    match resp.rejected.first() {
        None => {
            assert_eq!(resp.acked, vec![0]);
            Ok(())
        }
        Some(r) => Err((r.code, r.message.clone())),
    }
}

pub fn refused(v: Result<(), (RejectCode, String)>, code: RejectCode, says: &str) {
    match v {
        Err((c, m)) => {
            assert_eq!(c, code, "{m}");
            assert!(m.contains(says), "{m:?} should say {says:?}");
        }
        Ok(()) => panic!("accepted; expected {code:?} ({says})"),
    }
}

pub fn item(kind: ItemKind, record: RecordKind, id: &str, data: Vec<u8>) -> Item {
    Item {
        kind,
        record,
        doc_id: doc_id_bytes(id).unwrap(),
        data,
    }
}

/// A change to record `id` as phone `p` holds it, written directly with the
/// phone's actor.
pub fn forge(
    p: &mut Phone,
    id: &str,
    kind: RecordKind,
    edit: impl FnOnce(&mut Transaction<'_>),
) -> Item {
    let (_, saved) = p.store.export_document(id).unwrap();
    let mut d = Automerge::load(&saved).unwrap().with_actor(actor(p));
    let mut tx = d.transaction();
    edit(&mut tx);
    tx.commit();
    let c = d.get_last_local_change().unwrap();
    item(ItemKind::Change, kind, id, c.raw_bytes().to_vec())
}

/// A whole new document written with phone `p`'s actor.
pub fn forge_doc(
    p: &Phone,
    wire_id: &str,
    kind: RecordKind,
    write: impl FnOnce(&mut Transaction<'_>),
) -> Item {
    let mut d = Automerge::new().with_actor(actor(p));
    let mut tx = d.transaction();
    write(&mut tx);
    tx.commit();
    item(ItemKind::Document, kind, wire_id, d.save())
}

/// An empty inspection record by li.wei in county A, of `site`.
pub fn li_inspection(id: &str, site: &str) -> fieldbook_core::model::Inspection {
    fieldbook_core::model::Inspection {
        id: id.into(),
        site_id: site.into(),
        site_kind: SiteKind::HouseholdToilet,
        village_code: VILLAGE_A.into(),
        template_version: 1,
        inspector: "li.wei".into(),
        device: "phone-li".into(),
        started_at: 0,
        location: None,
        answers: Default::default(),
        conflicts: Default::default(),
        photos: Vec::new(),
        notes: Vec::new(),
        events: Vec::new(),
    }
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn field_site(store: &mut Store, village: &str) -> String {
    store
        .add_site(NewSite {
            kind: SiteKind::HouseholdToilet,
            name: "张家户厕".into(),
            village_code: village.into(),
            location: None,
            attributes: Default::default(),
        })
        .unwrap()
}

/// A complete household-toilet inspection of `site`, submitted.
pub fn submitted(store: &mut Store, site: &str, n: u64) -> String {
    let id = store.start_inspection(site).unwrap();
    store.set_answers(&id, &toilet_answers(true)).unwrap();
    store
        .add_photo_ref(&id, photo_ref(2 * n, "photos"))
        .unwrap();
    store
        .add_photo_ref(&id, photo_ref(2 * n + 1, "photos"))
        .unwrap();
    store.submit(&id).unwrap();
    id
}

pub fn answers_obj(tx: &Transaction<'_>) -> automerge::ObjId {
    match tx.get(ROOT, "answers").unwrap() {
        Some((_, o)) => o,
        None => panic!("no answers"),
    }
}

/// County B's records: a site, an approved inspection, an open finding.
pub struct CountyB {
    pub site: String,
    pub inspection: String,
    pub finding: String,
}

pub fn county_b(server: &TestServer) -> CountyB {
    let mut zhao = Phone::login(server, "zhao.lei", "phone-zhao");
    let mut sun = Phone::login(server, "sun.li", "desk-sun");
    let site = field_site(&mut zhao.store, VILLAGE_B);
    let inspection = submitted(&mut zhao.store, &site, 900);
    let finding = zhao
        .store
        .raise_finding(NewFinding {
            inspection_id: Some(inspection.clone()),
            site_id: site.clone(),
            title: "化粪池渗漏".into(),
            description: String::new(),
            deadline: Some("2026-12-31".into()),
        })
        .unwrap();
    zhao.sync().unwrap();
    sun.sync().unwrap();
    sun.store.approve(&inspection, None).unwrap();
    sun.sync().unwrap();
    CountyB {
        site,
        inspection,
        finding,
    }
}
