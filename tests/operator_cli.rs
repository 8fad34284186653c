//! Black-box: the operator commands of the binary (check, dead, sync, backfill), run
//! against the same store and simulators as the service.
mod support;

use std::process::Output;

use ghl_holded_sync::sim::faults::{FaultAction, FaultRule};
use reqwest::Method;
use support::service::{World, HOLDED_KEY};

/// Runs the binary to completion; the tests use a multi-threaded runtime so the
/// simulators keep serving meanwhile.
fn run(world: &World, args: &[&str], overrides: &[(&str, &str)]) -> Output {
    let mut env = world.service_env();
    for (name, value) in overrides {
        env.insert(name.to_string(), value.to_string());
    }
    std::process::Command::new(env!("CARGO_BIN_EXE_ghl-holded-sync"))
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_line_by_line_and_fails_on_a_wrong_key() {
    let world = World::new().await;
    let output = run(&world, &["check"], &[]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    let verdicts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
        .collect();
    assert_eq!(verdicts.len(), 5, "store + 3 GHL scopes + Holded: {text}");
    assert!(verdicts.iter().all(|l| l.starts_with("PASS")), "{text}");

    let output = run(&world, &["check"], &[("HOLDED_API_KEY", "not-a-valid-key")]);
    let text = stdout(&output);
    assert!(!output.status.success());
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(failed[0].contains("Holded"), "{text}");
    assert!(
        !text.contains("not-a-valid-key"),
        "the key is never printed"
    );

    let output = run(&world, &["check"], &[("GHL_PRIVATE_TOKEN", "pit-wrong")]);
    let text = stdout(&output);
    assert!(!output.status.success());
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("FAIL") && l.contains("GHL"))
            .count(),
        3,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_queues_every_contact_and_resumes_after_a_failure() {
    let mut world = World::new().await;
    world.without_rate_limits();
    world.seed_contacts((0..250).map(|i| format!("c{i:03}")));
    // The first page goes through (a no-op rule that expires), the second fails once.
    let search =
        |action| FaultRule::always(Some(Method::POST), "/contacts/search", action).times(1);
    world
        .ghl
        .faults()
        .push(search(FaultAction::Latency(std::time::Duration::ZERO)));
    world.ghl.faults().push(search(FaultAction::Status {
        code: 500,
        retry_after_secs: None,
    }));
    let location = support::service::LOCATION;
    let first = run(&world, &["backfill", "--location", location], &[]);
    assert!(!first.status.success(), "the failed page stops the run");
    assert_eq!(
        world.count_rows("work").await,
        100,
        "the first page was queued"
    );

    let second = run(&world, &["backfill", "--location", location], &[]);
    let text = stdout(&second);
    assert!(second.status.success(), "{text}");
    assert!(text.contains("resuming after 100 contacts"), "{text}");
    assert!(text.contains("queued 250 contacts"), "{text}");
    assert_eq!(world.count_rows("work").await, 250);

    // Then the service syncs the backlog.
    let service = world.start_service().await;
    support::eventually("the backlog in Holded", support::service::SYNC, || async {
        (world.holded.contacts(HOLDED_KEY).len() == 250).then_some(())
    })
    .await;
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_queues_one_record_and_dead_items_are_listed_and_replayed() {
    let world = World::new().await;
    world.seed_contact("c1");
    let output = run(&world, &["sync", "contact", "c1"], &[]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert_eq!(world.work_row("c1").await.unwrap().0, "pending");

    let output = run(&world, &["sync", "note", "n1"], &[]);
    assert!(!output.status.success(), "a note needs its contact");
    let output = run(&world, &["sync", "widget", "x1"], &[]);
    assert!(!output.status.success());

    // Holded refuses the contact for good; the service dead-letters it.
    world.holded.faults().push(FaultRule::always(
        Some(Method::POST),
        "/api/invoicing/v1/contacts",
        FaultAction::StatusZeroOk("invalid email".into()),
    ));
    let service = world.start_service().await;
    world.wait_for_dead_work("c1", "the dead item").await;
    let listed = run(&world, &["dead", "list"], &[]);
    let text = stdout(&listed);
    assert!(
        text.contains("c1") && text.contains("invalid email"),
        "{text}"
    );
    assert!(text.contains("1 dead item(s)"), "{text}");

    world.holded.faults().clear();
    let replayed = run(&world, &["dead", "replay", "--all"], &[]);
    assert!(stdout(&replayed).contains("1 item(s) queued again"));
    world
        .holded_contact_where("c1", "synced after the replay", |_| true)
        .await;
    let again = run(&world, &["dead", "replay", "999"], &[]);
    assert!(!again.status.success(), "no such dead item");
    drop(service);
}
