//! Black-box: a contact's tasks, notes and appointments become Holded CRM events on it.
mod support;

use ghl_holded_sync::sim::faults::{FaultAction, FaultRule, Gate};
use ghl_holded_sync::sim::webhooks::{appointment_event, note_event, task_event};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::eventually;
use support::service::{Service, World, HOLDED_KEY, LOCATION, SYNC};

const DUE: &str = "2026-12-22T06:55:00.000Z";
const DUE_UNIX: i64 = 1_797_922_500;

fn task(id: &str, contact: &str, completed: bool) -> Value {
    json!({
        "id": id, "contactId": contact, "title": format!("Call {id}"),
        "body": "Ask about the quote", "dueDate": DUE, "completed": completed,
        "assignedTo": "u1",
    })
}

fn note(id: &str, contact: &str, body: &str) -> Value {
    json!({ "id": id, "contactId": contact, "body": body, "dateAdded": "2026-11-26T12:41:02.193Z" })
}

fn appointment(id: &str, contact: &str, status: &str) -> Value {
    json!({
        "id": id, "locationId": LOCATION, "contactId": contact, "calendarId": "cal1",
        "groupId": "g1", "assignedUserId": "u1", "users": ["u1"], "title": "Product demo",
        "appointmentStatus": status, "address": "Calle Mayor 1, Madrid",
        "startTime": "2026-12-10T10:00:00+01:00", "endTime": "2026-12-10T10:45:00+01:00",
        "dateAdded": "2026-12-01T09:00:00.000Z", "dateUpdated": "2026-12-01T09:00:00.000Z",
        "createdBy": { "userId": "u1", "source": "booking_widget" },
    })
}

/// A world with contact `c1` already synced to Holded; returns its Holded id.
async fn world_with_contact() -> (World, Service, String) {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c1");
    world
        .post_signed(&service, &world.contact_webhook("ContactCreate", "c1"))
        .await;
    let contact = world
        .holded_contact_where("c1", "the contact", |_| true)
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    (world, service, id)
}

async fn post(world: &World, service: &Service, event: Value) {
    let response = world
        .post_signed(service, &serde_json::to_vec(&event).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The one Holded event tagged with this GHL origin, once `ready` holds.
async fn holded_event(world: &World, tag: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("the Holded event {tag}"), SYNC, || async {
        let found: Vec<Value> = world
            .holded
            .events(HOLDED_KEY)
            .into_iter()
            .filter(|e| {
                e["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == tag))
            })
            .collect();
        match found.as_slice() {
            [one] if ready(one) => Some(one.clone()),
            [] | [_] => None,
            many => panic!("{} events tagged {tag}: {many:?}", many.len()),
        }
    })
    .await
}

async fn no_events_tagged(world: &World, tag: &str) {
    eventually(&format!("no Holded event {tag}"), SYNC, || async {
        let events = world.holded.events(HOLDED_KEY);
        (!events.iter().any(|e| {
            e["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == tag))
        }))
        .then_some(())
    })
    .await
}

fn event_writes(world: &World) -> usize {
    world
        .holded
        .requests()
        .all()
        .iter()
        .filter(|r| r.path.starts_with("/api/crm/v1/events") && r.method != Method::GET)
        .count()
}

#[tokio::test]
async fn task_lifecycle_field_by_field() {
    let (world, service, holded_contact) = world_with_contact().await;
    world.ghl.put_task("c1", task("t1", "c1", false));
    // The simulator drops contactId and body from TaskCreate, as GHL really does.
    post(
        &world,
        &service,
        task_event("TaskCreate", LOCATION, &task("t1", "c1", false)),
    )
    .await;
    let event = holded_event(&world, "ghl-task-t1", |_| true).await;
    assert_eq!(event["kind"], "task");
    assert_eq!(event["name"], "Call t1");
    assert_eq!(event["desc"], "Ask about the quote");
    assert_eq!(event["startDate"], DUE_UNIX);
    assert_eq!(event["status"], 0);
    assert_eq!(event["contactId"], holded_contact.as_str());
    let searched = world.ghl.requests().count(
        &Method::POST,
        &format!("/locations/{LOCATION}/tasks/search"),
    );
    assert_eq!(
        searched, 1,
        "the contact was resolved through the task search"
    );

    world.ghl.put_task("c1", task("t1", "c1", true));
    post(
        &world,
        &service,
        task_event("TaskComplete", LOCATION, &task("t1", "c1", true)),
    )
    .await;
    holded_event(&world, "ghl-task-t1", |e| e["status"] == 1).await;

    world.ghl.delete_task("c1", "t1");
    post(
        &world,
        &service,
        task_event("TaskDelete", LOCATION, &task("t1", "c1", true)),
    )
    .await;
    no_events_tagged(&world, "ghl-task-t1").await;
}

#[tokio::test]
async fn note_lifecycle_field_by_field() {
    let (world, service, holded_contact) = world_with_contact().await;
    let first = note("n1", "c1", "Met at the fair\nWants a demo in January");
    world.ghl.put_note("c1", first.clone());
    post(&world, &service, note_event("NoteCreate", LOCATION, &first)).await;
    let event = holded_event(&world, "ghl-note-n1", |_| true).await;
    assert_eq!(event["kind"], "note");
    assert_eq!(event["name"], "Met at the fair");
    assert_eq!(event["desc"], "Met at the fair\nWants a demo in January");
    assert_eq!(event["startDate"], 1_795_696_862);
    assert_eq!(event["contactId"], holded_contact.as_str());

    let edited = note("n1", "c1", "Demo booked");
    world.ghl.put_note("c1", edited.clone());
    post(
        &world,
        &service,
        note_event("NoteUpdate", LOCATION, &edited),
    )
    .await;
    holded_event(&world, "ghl-note-n1", |e| e["desc"] == "Demo booked").await;

    world.ghl.delete_note("c1", "n1");
    post(
        &world,
        &service,
        note_event("NoteDelete", LOCATION, &edited),
    )
    .await;
    no_events_tagged(&world, "ghl-note-n1").await;
}

#[tokio::test]
async fn appointment_lifecycle_field_by_field() {
    let (world, service, holded_contact) = world_with_contact().await;
    world
        .ghl
        .put_appointment(appointment("a1", "c1", "confirmed"));
    post(
        &world,
        &service,
        appointment_event("AppointmentCreate", &appointment("a1", "c1", "confirmed")),
    )
    .await;
    let event = holded_event(&world, "ghl-appointment-a1", |_| true).await;
    assert_eq!(event["kind"], "meeting");
    assert_eq!(event["name"], "Product demo");
    assert_eq!(event["startDate"], 1_796_893_200);
    assert_eq!(event["endDate"], 1_796_893_200 + 45 * 60);
    assert_eq!(event["locationDesc"], "Calle Mayor 1, Madrid");
    assert!(event["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("ghl-status-confirmed")));
    assert_eq!(event["contactId"], holded_contact.as_str());
    let fetch = world
        .ghl
        .requests()
        .all()
        .into_iter()
        .find(|r| r.path == "/calendars/events/appointments/a1")
        .unwrap();
    assert_eq!(fetch.headers["version"], "2021-04-15");

    world.ghl.put_appointment(appointment("a1", "c1", "showed"));
    post(
        &world,
        &service,
        appointment_event("AppointmentUpdate", &appointment("a1", "c1", "showed")),
    )
    .await;
    holded_event(&world, "ghl-appointment-a1", |e| e["status"] == 1).await;

    // GHL's documented delete example carries "type": "AppointmentCreate"; the 404 decides.
    world.ghl.delete_appointment("a1");
    post(
        &world,
        &service,
        appointment_event("AppointmentCreate", &appointment("a1", "c1", "showed")),
    )
    .await;
    no_events_tagged(&world, "ghl-appointment-a1").await;
}

#[tokio::test]
async fn task_create_and_complete_out_of_order_end_done() {
    let (world, service, _) = world_with_contact().await;
    world.ghl.put_task("c1", task("t2", "c1", true));
    post(
        &world,
        &service,
        task_event("TaskComplete", LOCATION, &task("t2", "c1", true)),
    )
    .await;
    post(
        &world,
        &service,
        task_event("TaskCreate", LOCATION, &task("t2", "c1", false)),
    )
    .await;
    holded_event(&world, "ghl-task-t2", |e| e["status"] == 1).await;
}

#[tokio::test]
async fn task_whose_contact_cannot_be_found_is_dead_lettered_with_the_reason() {
    let (world, service, _) = world_with_contact().await;
    // GHL knows no such task: the search finds no contact.
    post(
        &world,
        &service,
        task_event("TaskCreate", LOCATION, &task("ghost", "c1", false)),
    )
    .await;
    let (state, error) = eventually("the task to be dead-lettered", SYNC, || async {
        let row = world.work_row("ghost").await?;
        (row.0 == "dead").then_some(row)
    })
    .await;
    assert_eq!(state, "dead");
    assert!(error.unwrap().contains("could not be found"));
    assert_eq!(event_writes(&world), 0);
}

#[tokio::test]
async fn child_before_parent_syncs_the_contact_first() {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c9");
    let n = note("n9", "c9", "First contact by phone");
    world.ghl.put_note("c9", n.clone());
    // No ContactCreate was ever delivered for c9.
    post(&world, &service, note_event("NoteCreate", LOCATION, &n)).await;
    let event = holded_event(&world, "ghl-note-n9", |_| true).await;
    let contact = world
        .holded_contact_where("c9", "the contact", |_| true)
        .await;
    assert_eq!(event["contactId"], contact["id"]);
    assert_eq!(world.holded.contacts(HOLDED_KEY).len(), 1);
}

#[tokio::test]
async fn first_sync_brings_the_contacts_history() {
    let world = World::new().await;
    let service = world.start_service().await;
    world.seed_contact("c1");
    for i in 1..=3 {
        world
            .ghl
            .put_task("c1", task(&format!("t{i}"), "c1", i == 3));
    }
    for i in 1..=2 {
        world
            .ghl
            .put_note("c1", note(&format!("n{i}"), "c1", &format!("Note {i}")));
    }
    world
        .ghl
        .put_appointment(appointment("a1", "c1", "confirmed"));
    post(
        &world,
        &service,
        serde_json::from_slice(&world.contact_webhook("ContactCreate", "c1")).unwrap(),
    )
    .await;

    let contact = world
        .holded_contact_where("c1", "the contact", |_| true)
        .await;
    let events = eventually("six events in Holded", SYNC, || async {
        let events = world.holded.events(HOLDED_KEY);
        (events.len() >= 6).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 6);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "task").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "note").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "meeting").count(), 1);
    assert!(events.iter().all(|e| e["contactId"] == contact["id"]));
    let done = holded_event(&world, "ghl-task-t3", |_| true).await;
    assert_eq!(done["status"], 1);
}

#[tokio::test]
async fn a_task_edited_in_ghl_is_caught_by_the_next_contact_sync() {
    let (world, service, _) = world_with_contact().await;
    world.ghl.put_task("c1", task("t1", "c1", false));
    post(
        &world,
        &service,
        task_event("TaskCreate", LOCATION, &task("t1", "c1", false)),
    )
    .await;
    holded_event(&world, "ghl-task-t1", |_| true).await;

    // GHL has no TaskUpdate event: the edit rides on the next contact event.
    let mut edited = task("t1", "c1", false);
    edited["title"] = json!("Call about the renewal");
    world.ghl.put_task("c1", edited);
    post(
        &world,
        &service,
        serde_json::from_slice(&world.contact_webhook("ContactUpdate", "c1")).unwrap(),
    )
    .await;
    holded_event(&world, "ghl-task-t1", |e| {
        e["name"] == "Call about the renewal"
    })
    .await;
}

#[tokio::test]
async fn unchanged_redelivery_makes_zero_writes() {
    let (world, service, _) = world_with_contact().await;
    world.ghl.put_task("c1", task("t1", "c1", true));
    post(
        &world,
        &service,
        task_event("TaskComplete", LOCATION, &task("t1", "c1", true)),
    )
    .await;
    holded_event(&world, "ghl-task-t1", |_| true).await;
    service
        .wait_for_log("the task sync", |l| {
            l["ghl_id"] == "t1" && l["outcome"] == "created"
        })
        .await;
    let writes = world.holded.requests().writes();

    post(
        &world,
        &service,
        task_event("TaskComplete", LOCATION, &task("t1", "c1", true)),
    )
    .await;
    post(
        &world,
        &service,
        serde_json::from_slice(&world.contact_webhook("ContactUpdate", "c1")).unwrap(),
    )
    .await;
    eventually("both re-syncs", SYNC, || async {
        let unchanged = |id: &str| {
            service
                .sync_outcomes(id)
                .iter()
                .filter(|o| *o == "unchanged")
                .count()
        };
        (unchanged("t1") >= 1 && unchanged("c1") >= 1).then_some(())
    })
    .await;
    assert_eq!(world.holded.requests().writes(), writes);
}

#[tokio::test]
async fn a_child_created_and_deleted_before_its_first_sync_writes_nothing() {
    let mut world = World::new().await;
    world.env.insert("WORKERS".into(), "1".into());
    let service = world.start_service().await;
    world.seed_contact("c1");
    world
        .post_signed(&service, &world.contact_webhook("ContactCreate", "c1"))
        .await;
    world
        .holded_contact_where("c1", "the contact", |_| true)
        .await;

    // Keep the only worker busy on another contact while both note events arrive.
    world.seed_contact("busy");
    let gate = world.hold_first_ghl_get("/contacts/busy");
    world
        .post_signed(&service, &world.contact_webhook("ContactCreate", "busy"))
        .await;
    assert!(gate.wait_for_arrivals(1, SYNC).await);
    let n = note("n1", "c1", "Oops");
    post(&world, &service, note_event("NoteCreate", LOCATION, &n)).await;
    post(&world, &service, note_event("NoteDelete", LOCATION, &n)).await;
    gate.open();

    service
        .wait_for_log("the note's sync", |l| {
            l["message"] == "sync" && l["ghl_id"] == "n1"
        })
        .await;
    assert_eq!(event_writes(&world), 0);
    assert_eq!(
        world
            .ghl
            .requests()
            .count(&Method::GET, "/contacts/c1/notes/n1"),
        0
    );
}

#[tokio::test]
async fn deleting_a_contact_under_the_delete_policy_removes_its_events_first() {
    let mut world = World::new().await;
    world.env.insert("DELETE_POLICY".into(), "delete".into());
    let service = world.start_service().await;
    world.seed_contact("c1");
    world.ghl.put_task("c1", task("t1", "c1", false));
    world.ghl.put_note("c1", note("n1", "c1", "Hello"));
    world
        .post_signed(&service, &world.contact_webhook("ContactCreate", "c1"))
        .await;
    eventually("both events", SYNC, || async {
        (world.holded.events(HOLDED_KEY).len() == 2).then_some(())
    })
    .await;

    let body = world.contact_webhook("ContactDelete", "c1");
    world.ghl.delete_contact("c1");
    world.post_signed(&service, &body).await;
    eventually("contact and events gone", SYNC, || async {
        (world.holded.contacts(HOLDED_KEY).is_empty() && world.holded.events(HOLDED_KEY).is_empty())
            .then_some(())
    })
    .await;
    let deletes: Vec<String> = world
        .holded
        .requests()
        .all()
        .into_iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| r.path)
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
    assert!(
        deletes[2].starts_with("/api/invoicing/v1/contacts/"),
        "the contact goes last: {deletes:?}"
    );
}

#[tokio::test]
async fn an_event_created_but_never_acknowledged_is_recovered_not_duplicated() {
    let mut world = World::new().await;
    world.env.insert("UPSTREAM_TIMEOUT".into(), "1s".into());
    let service = world.start_service().await;
    world.seed_contact("c1");
    world
        .post_signed(&service, &world.contact_webhook("ContactCreate", "c1"))
        .await;
    world
        .holded_contact_where("c1", "the contact", |_| true)
        .await;

    // Holded stores the event but its answer never arrives: the attempt times out.
    let lost_answer = Gate::new();
    world.holded.faults().push(
        FaultRule::always(
            Some(Method::POST),
            "/api/crm/v1/events",
            FaultAction::Hold(lost_answer.clone()),
        )
        .times(1),
    );
    let n = note("n1", "c1", "Call me back");
    world.ghl.put_note("c1", n.clone());
    post(&world, &service, note_event("NoteCreate", LOCATION, &n)).await;
    service
        .wait_for_log("the recovery", |l| {
            l["ghl_id"] == "n1" && l["outcome"] == "recovered"
        })
        .await;
    holded_event(&world, "ghl-note-n1", |_| true).await;
    assert_eq!(world.holded.events(HOLDED_KEY).len(), 1);
    lost_answer.open();
}
