//! `check`: the calls a user makes before going live. One line per check, a clear
//! verdict, and a failing exit status if any check fails.
use crate::domain::GhlId;
use crate::ghl::{GhlClient, GhlError};
use crate::holded::HoldedClient;
use crate::store::SharedStore;
use crate::tenants::TenantDirectory;

/// A record id that exists nowhere: the checks need an authorised answer, not data.
const PROBE_ID: &str = "ghl-holded-sync-check";

struct Report {
    failures: usize,
}

impl Report {
    fn line(&mut self, passed: bool, subject: &str, detail: &str) {
        if !passed {
            self.failures += 1;
        }
        println!(
            "{}  {subject}: {detail}",
            if passed { "PASS" } else { "FAIL" }
        );
    }
}

fn ghl_verdict(result: Result<(), GhlError>, scope: &str) -> (bool, String) {
    match result {
        Ok(()) => (true, format!("token accepted for {scope}")),
        Err(GhlError::Unauthorized(message)) => (false, format!("token refused (401): {message}")),
        Err(GhlError::Rejected {
            status: 403,
            message,
        }) => (
            false,
            format!("token lacks the {scope} scope (403): {message}"),
        ),
        Err(other) => (false, other.to_string()),
    }
}

/// Returns whether every check passed.
pub async fn run(
    store: &SharedStore,
    tenants: &dyn TenantDirectory,
    ghl: &GhlClient,
    holded: &HoldedClient,
) -> bool {
    let mut report = Report { failures: 0 };
    match store.ping().await {
        Ok(()) => report.line(true, "store", "reachable and migrated"),
        Err(error) => report.line(false, "store", &error.to_string()),
    }
    let tenants = tenants.all().await;
    if tenants.is_empty() {
        report.line(
            false,
            "locations",
            "none configured (set GHL_LOCATION_ID, GHL_PRIVATE_TOKEN, HOLDED_API_KEY)",
        );
    }
    let probe = GhlId::parse(PROBE_ID).expect("valid id");
    for tenant in &tenants {
        let subject = format!("location {}", tenant.location_id);
        let access = tenant.ghl();
        let contacts = ghl
            .search_updated_since(access, chrono::Utc::now(), None, 1)
            .await
            .map(drop);
        let (ok, detail) = ghl_verdict(contacts, "contacts.readonly");
        report.line(ok, &format!("{subject} GHL contacts"), &detail);
        let tasks = ghl.find_task_contact(access, &probe).await.map(drop);
        let (ok, detail) = ghl_verdict(tasks, "locations/tasks.readonly");
        report.line(ok, &format!("{subject} GHL task search"), &detail);
        let calendars = ghl.get_appointment(access, &probe).await.map(drop);
        let (ok, detail) = ghl_verdict(calendars, "calendars/events.readonly");
        report.line(ok, &format!("{subject} GHL appointments"), &detail);
        match holded.check_key(&tenant.holded_key).await {
            Ok(_) => report.line(true, &format!("{subject} Holded"), "API key accepted"),
            Err(error) => report.line(false, &format!("{subject} Holded"), &error.to_string()),
        }
    }
    println!(
        "{}",
        if report.failures == 0 {
            "all checks passed".to_owned()
        } else {
            format!("{} check(s) failed", report.failures)
        }
    );
    report.failures == 0
}
