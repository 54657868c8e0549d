//! Sessions while the controller's state lock is held by a slow commit.

use std::time::Duration;

use uuid::Uuid;

use crate::controller::Controller;
use crate::controller::ControllerOptions;
use crate::controller_ops::BrokerRegistrationRequest;
use crate::controller_ops::HeartbeatRequest;
use crate::quorum::MetadataQuorum;
use crate::quorum::QuorumConfig;

const SESSION: Duration = Duration::from_millis(300);

async fn controller(dir: &std::path::Path) -> Controller {
    let quorum = MetadataQuorum::start(QuorumConfig::single_voter(1, dir, "127.0.0.1:9093"))
        .await
        .expect("single-voter quorum starts");
    Controller::with_options(
        quorum,
        ControllerOptions {
            session_timeout: SESSION,
            ..ControllerOptions::default()
        },
    )
}

fn heartbeat(controller: &Controller, incarnation: Uuid) -> HeartbeatRequest {
    HeartbeatRequest {
        node_id: 1,
        incarnation,
        metadata_offset: controller.quorum().image().offset,
        want_shutdown: false,
    }
}

/// Registers a new incarnation of broker 1, fenced until a heartbeat unfences it.
async fn register(controller: &Controller) -> Uuid {
    let incarnation = Uuid::new_v4();
    controller
        .register(BrokerRegistrationRequest {
            node_id: 1,
            incarnation,
            host: "b1".to_owned(),
            port: 9092,
            rack: None,
        })
        .await
        .expect("registers");
    incarnation
}

async fn register_live(controller: &Controller) -> Uuid {
    let incarnation = register(controller).await;
    let reply = controller
        .heartbeat(heartbeat(controller, incarnation))
        .await
        .expect("heartbeat accepted");
    assert!(!reply.fenced);
    incarnation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_session_alive_while_a_commit_holds_the_state_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = controller(dir.path()).await;
    let incarnation = register_live(&controller).await;
    // The first duty pass of a term starts every session afresh.
    controller.fence_expired_brokers().await;

    // A commit that takes three session timeouts holds the lock; the broker keeps
    // heartbeating at its usual pace, and every heartbeat is answered meanwhile.
    let held = controller.inner.state.lock().await;
    let until = tokio::time::Instant::now() + SESSION * 3;
    while tokio::time::Instant::now() < until {
        let reply = tokio::time::timeout(
            SESSION,
            controller.heartbeat(heartbeat(&controller, incarnation)),
        )
        .await
        .expect("a heartbeat that changes nothing does not wait for the state lock")
        .expect("heartbeat accepted");
        assert!(!reply.fenced);
        tokio::time::sleep(SESSION / 6).await;
    }
    drop(held);

    controller.fence_expired_brokers().await;
    let broker = controller
        .quorum()
        .image()
        .broker(1)
        .cloned()
        .expect("registered");
    assert!(
        !broker.fenced,
        "a broker that heartbeated throughout keeps its session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_unfencing_heartbeat_counts_as_contact_before_it_gets_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = controller(dir.path()).await;
    register_live(&controller).await;
    controller.fence_expired_brokers().await;
    // A new incarnation (a restart) is fenced until a heartbeat unfences it, which needs
    // the lock.
    let incarnation = register(&controller).await;
    let held = controller.inner.state.lock().await;
    tokio::time::sleep(SESSION * 2).await;
    let sent = std::time::Instant::now();
    let queued = tokio::spawn({
        let controller = controller.clone();
        let request = heartbeat(&controller, incarnation);
        async move { controller.heartbeat(request).await }
    });
    // The heartbeat waits on the lock, and its arrival already renewed the session.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while controller
        .inner
        .heartbeats
        .lock()
        .last
        .get(&1)
        .is_none_or(|at| *at < sent)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queued heartbeat never renewed the session"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !queued.is_finished(),
        "an unfencing heartbeat commits under the lock"
    );
    drop(held);
    let reply = queued.await.expect("joins").expect("heartbeat accepted");
    assert!(!reply.fenced, "unfenced once it had the lock");
}
