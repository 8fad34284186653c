//! The baseline: a bare axum handler that reads the body and answers 200, in a process of its
//! own, on the same runtime settings as the service (`#[tokio::main]`: one worker per core).
use std::process::ExitCode;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use axum::Router;

/// The argument that makes the benchmark binary serve the baseline instead.
pub const FLAG: &str = "--bare-axum";

/// What the service answers a stored webhook, so both send the same bytes back.
const ANSWER: &str = r#"{"status":"stored"}"#;

async fn receive(body: Bytes) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    drop(body);
    ([(CONTENT_TYPE, "application/json")], ANSWER)
}

pub fn serve() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("bare axum: cannot bind 127.0.0.1:0: {error}");
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().expect("bound address");
        // The same line shape as the service's JSON log, so one parser finds both ports.
        println!(r#"{{"message":"listening","addr":"{addr}"}}"#);
        let router = Router::new().route("/webhooks/ghl", post(receive));
        match axum::serve(listener, router).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bare axum: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
