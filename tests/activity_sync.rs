//! Black-box: a contact's tasks, notes and appointments become Holded CRM events on it.
mod support;

use ghl_holded_sync::sim::faults::{FaultAction, FaultRule, Gate};
use ghl_holded_sync::sim::webhooks::{appointment_event, note_event, task_event};
use reqwest::Method;
use serde_json::{json, Value};
use support::eventually;
use support::service::{has_tag, Service, World, HOLDED_KEY, LOCATION, SYNC};

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
    let contact = world
        .create_and_sync_contact(&service, "c1", "the contact")
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    (world, service, id)
}

/// Puts `task` on contact `c1` in GHL, then posts its `event_type`, as GHL would notify it.
async fn put_task_and_post(world: &World, service: &Service, event_type: &str, task: Value) {
    world.ghl.put_task("c1", task.clone());
    post_task_event(world, service, event_type, &task).await;
}

/// Posts a GHL task event for `task` (as `task_event` shapes it), asserting it is acknowledged.
async fn post_task_event(world: &World, service: &Service, event_type: &str, task: &Value) {
    world
        .post_event(service, &task_event(event_type, LOCATION, task))
        .await;
}

/// Posts a GHL note event for `note`, asserting it is acknowledged.
async fn post_note_event(world: &World, service: &Service, event_type: &str, note: &Value) {
    world
        .post_event(service, &note_event(event_type, LOCATION, note))
        .await;
}

/// Posts a GHL appointment event for `appointment`, asserting it is acknowledged.
async fn post_appointment_event(
    world: &World,
    service: &Service,
    event_type: &str,
    appointment: &Value,
) {
    world
        .post_event(service, &appointment_event(event_type, appointment))
        .await;
}

/// The one Holded event tagged with this GHL origin, once `ready` holds.
async fn holded_event(world: &World, tag: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("the Holded event {tag}"), SYNC, || async {
        let found: Vec<Value> = world
            .holded
            .events(HOLDED_KEY)
            .into_iter()
            .filter(|e| has_tag(e, tag))
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
        (!events.iter().any(|e| has_tag(e, tag))).then_some(())
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
    // The simulator drops contactId and body from TaskCreate, as GHL really does.
    put_task_and_post(&world, &service, "TaskCreate", task("t1", "c1", false)).await;
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

    put_task_and_post(&world, &service, "TaskComplete", task("t1", "c1", true)).await;
    holded_event(&world, "ghl-task-t1", |e| e["status"] == 1).await;

    world.ghl.delete_task("c1", "t1");
    post_task_event(&world, &service, "TaskDelete", &task("t1", "c1", true)).await;
    no_events_tagged(&world, "ghl-task-t1").await;
}

#[tokio::test]
async fn note_lifecycle_field_by_field() {
    let (world, service, holded_contact) = world_with_contact().await;
    let first = note("n1", "c1", "Met at the fair\nWants a demo in January");
    world.ghl.put_note("c1", first.clone());
    post_note_event(&world, &service, "NoteCreate", &first).await;
    let event = holded_event(&world, "ghl-note-n1", |_| true).await;
    assert_eq!(event["kind"], "note");
    assert_eq!(event["name"], "Met at the fair");
    assert_eq!(event["desc"], "Met at the fair\nWants a demo in January");
    assert_eq!(event["startDate"], 1_795_696_862);
    assert_eq!(event["contactId"], holded_contact.as_str());

    let edited = note("n1", "c1", "Demo booked");
    world.ghl.put_note("c1", edited.clone());
    post_note_event(&world, &service, "NoteUpdate", &edited).await;
    holded_event(&world, "ghl-note-n1", |e| e["desc"] == "Demo booked").await;

    world.ghl.delete_note("c1", "n1");
    post_note_event(&world, &service, "NoteDelete", &edited).await;
    no_events_tagged(&world, "ghl-note-n1").await;
}

#[tokio::test]
async fn appointment_lifecycle_field_by_field() {
    let (world, service, holded_contact) = world_with_contact().await;
    world
        .ghl
        .put_appointment(appointment("a1", "c1", "confirmed"));
    post_appointment_event(
        &world,
        &service,
        "AppointmentCreate",
        &appointment("a1", "c1", "confirmed"),
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
    let fetch = world.first_ghl_request("/calendars/events/appointments/a1");
    assert_eq!(fetch.headers["version"], "2021-04-15");

    world.ghl.put_appointment(appointment("a1", "c1", "showed"));
    post_appointment_event(
        &world,
        &service,
        "AppointmentUpdate",
        &appointment("a1", "c1", "showed"),
    )
    .await;
    holded_event(&world, "ghl-appointment-a1", |e| e["status"] == 1).await;

    // GHL's documented delete example carries "type": "AppointmentCreate"; the 404 decides.
    world.ghl.delete_appointment("a1");
    post_appointment_event(
        &world,
        &service,
        "AppointmentCreate",
        &appointment("a1", "c1", "showed"),
    )
    .await;
    no_events_tagged(&world, "ghl-appointment-a1").await;
}

#[tokio::test]
async fn task_create_and_complete_out_of_order_end_done() {
    let (world, service, _) = world_with_contact().await;
    put_task_and_post(&world, &service, "TaskComplete", task("t2", "c1", true)).await;
    post_task_event(&world, &service, "TaskCreate", &task("t2", "c1", false)).await;
    holded_event(&world, "ghl-task-t2", |e| e["status"] == 1).await;
}

#[tokio::test]
async fn task_whose_contact_cannot_be_found_is_dead_lettered_with_the_reason() {
    let (world, service, _) = world_with_contact().await;
    // GHL knows no such task: the search finds no contact.
    post_task_event(&world, &service, "TaskCreate", &task("ghost", "c1", false)).await;
    let (state, error) = world
        .wait_for_dead_work("ghost", "the task to be dead-lettered")
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
    post_note_event(&world, &service, "NoteCreate", &n).await;
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
    world
        .post_contact_event(&service, "ContactCreate", "c1")
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
    put_task_and_post(&world, &service, "TaskCreate", task("t1", "c1", false)).await;
    holded_event(&world, "ghl-task-t1", |_| true).await;

    // GHL has no TaskUpdate event: the edit rides on the next contact event.
    let mut edited = task("t1", "c1", false);
    edited["title"] = json!("Call about the renewal");
    world.ghl.put_task("c1", edited);
    world
        .post_contact_event(&service, "ContactUpdate", "c1")
        .await;
    holded_event(&world, "ghl-task-t1", |e| {
        e["name"] == "Call about the renewal"
    })
    .await;
}

#[tokio::test]
async fn unchanged_redelivery_makes_zero_writes() {
    let (world, service, _) = world_with_contact().await;
    put_task_and_post(&world, &service, "TaskComplete", task("t1", "c1", true)).await;
    holded_event(&world, "ghl-task-t1", |_| true).await;
    service
        .wait_for_log("the task sync", |l| {
            l["ghl_id"] == "t1" && l["outcome"] == "created"
        })
        .await;
    let writes = world.holded.requests().writes();

    post_task_event(&world, &service, "TaskComplete", &task("t1", "c1", true)).await;
    world
        .post_contact_event(&service, "ContactUpdate", "c1")
        .await;
    eventually("both re-syncs", SYNC, || async {
        let unchanged = |id: &str| service.outcome_count(id, "unchanged");
        (unchanged("t1") >= 1 && unchanged("c1") >= 1).then_some(())
    })
    .await;
    assert_eq!(world.holded.requests().writes(), writes);
}

#[tokio::test]
async fn a_child_created_and_deleted_before_its_first_sync_writes_nothing() {
    let world = World::new().await.with_env("WORKERS", "1");
    let service = world.start_with_synced_contact("c1", "the contact").await;

    // Keep the only worker busy on another contact while both note events arrive.
    world.seed_contact("busy");
    let gate = world.hold_first_ghl_get("/contacts/busy");
    world
        .post_contact_event(&service, "ContactCreate", "busy")
        .await;
    assert!(gate.wait_for_arrivals(1, SYNC).await);
    let n = note("n1", "c1", "Oops");
    post_note_event(&world, &service, "NoteCreate", &n).await;
    post_note_event(&world, &service, "NoteDelete", &n).await;
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
    let world = World::new().await.with_env("DELETE_POLICY", "delete");
    let service = world.start_service().await;
    world.seed_contact("c1");
    world.ghl.put_task("c1", task("t1", "c1", false));
    world.ghl.put_note("c1", note("n1", "c1", "Hello"));
    world
        .post_contact_event(&service, "ContactCreate", "c1")
        .await;
    eventually("both events", SYNC, || async {
        (world.holded.events(HOLDED_KEY).len() == 2).then_some(())
    })
    .await;

    world
        .delete_in_ghl_then_post(&service, "ContactDelete", "c1")
        .await;
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
    let world = World::new().await.with_env("UPSTREAM_TIMEOUT", "1s");
    let service = world.start_with_synced_contact("c1", "the contact").await;

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
    post_note_event(&world, &service, "NoteCreate", &n).await;
    service
        .wait_for_log("the recovery", |l| {
            l["ghl_id"] == "n1" && l["outcome"] == "recovered"
        })
        .await;
    holded_event(&world, "ghl-note-n1", |_| true).await;
    assert_eq!(world.holded.events(HOLDED_KEY).len(), 1);
    lost_answer.open();
}
