//! An operator reaches a node's NodeControl actor over ractor_cluster: it lists the supervised
//! actors, crashes one by role name (and the actor really stops), is told when a name is
//! unknown, and is refused with a wrong cookie. Node and operator share this process, so each
//! test uses its own node id (ractor's registry and process groups are process-global).

use std::time::{Duration, Instant};

use aspen::cluster::node_control::{
    ChildStatus, ControlError, RemoteNodeControl, SupervisionReport, node_control_actor_name,
    spawn_node_control, start_control_server,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, ActorStatus};
use ractor_cluster::RactorMessage;

const COOKIE: &str = "node-control-test-cookie";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const STOP_BOUND: Duration = Duration::from_secs(5);

/// A child that does nothing, standing in for the RaftActor.
struct Dummy;

#[derive(RactorMessage)]
struct DummyMessage;

impl Actor for Dummy {
    type Msg = DummyMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<DummyMessage>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_lists_and_crashes_actors_over_the_wire() {
    let node_id = 901;
    let server =
        start_control_server("127.0.0.1", 0, COOKIE, node_id).await.expect("control server");
    assert_ne!(server.port(), 0, "port 0 is replaced by the chosen port");
    let report = SupervisionReport::new(node_id);
    let (dummy, dummy_done) =
        Actor::spawn(Some("aspen-901-dummy".into()), Dummy, ()).await.expect("dummy actor");
    report.set_child("dummy", "aspen-901-dummy");
    let control = spawn_node_control(report.clone(), None).await.expect("NodeControl");

    let addr = format!("127.0.0.1:{}", server.port());
    let operator =
        RemoteNodeControl::connect(&addr, COOKIE, node_id, CONNECT_TIMEOUT).await.expect("connect");

    let listed = operator.list_actors().await.expect("list actors");
    let expected = ChildStatus {
        name: "dummy".into(),
        actor_name: "aspen-901-dummy".into(),
        restarts: 0,
        running: true,
    };
    assert_eq!(listed, vec![expected]);

    operator.crash_actor("dummy").await.expect("crash the dummy");
    tokio::time::timeout(STOP_BOUND, dummy_done)
        .await
        .expect("the crashed dummy actor stops within 5 s")
        .expect("the dummy's task ends cleanly");
    assert_eq!(dummy.get_status(), ActorStatus::Stopped);

    let unknown = operator.crash_actor("nope").await;
    assert_eq!(unknown, Err(ControlError::NoSuchActor { name: "nope".into() }));
    let gone = operator.crash_actor("dummy").await;
    assert_eq!(gone, Err(ControlError::NotRunning { name: "dummy".into() }));

    // NodeControl may be told to crash itself: it answers before it goes.
    report.set_child("node-control", &node_control_actor_name(node_id));
    operator.crash_actor("node-control").await.expect("crash NodeControl itself");
    let waited = control.wait(Some(STOP_BOUND)).await;
    assert!(waited.is_ok(), "NodeControl stops within 5 s after crashing itself");
    // Standing in for the supervisor: a new NodeControl, which the operator finds by itself.
    report.set_child("node-control", &node_control_actor_name(node_id));
    let _control = spawn_node_control(report.clone(), None).await.expect("NodeControl again");
    let listed = operator.list_actors().await.expect("list actors from the new NodeControl");
    let names: Vec<_> = listed.iter().map(|child| child.name.as_str()).collect();
    assert_eq!(names, ["dummy", "node-control"]);

    operator.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_cookie_is_refused_within_the_timeout() {
    let node_id = 902;
    let server =
        start_control_server("127.0.0.1", 0, COOKIE, node_id).await.expect("control server");
    let report = SupervisionReport::new(node_id);
    let control = spawn_node_control(report, None).await.expect("NodeControl");

    let addr = format!("127.0.0.1:{}", server.port());
    let started = Instant::now();
    let refused =
        RemoteNodeControl::connect(&addr, "not-the-cookie", node_id, CONNECT_TIMEOUT).await;
    let elapsed = started.elapsed();

    // The node closes the session during the handshake, which the operator reports as such
    // rather than waiting out its timeout; it never got a handle on the NodeControl actor.
    // (Process groups are process-global: here another test's sessions may mirror this node's
    // group, so the group itself proves nothing about this operator.)
    assert_eq!(refused.err(), Some(ControlError::AuthenticationFailed { addr: addr.clone() }));
    assert!(elapsed < CONNECT_TIMEOUT + Duration::from_secs(1), "refused after {elapsed:?}");
    control.stop(None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_listening_is_unreachable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let result =
        RemoteNodeControl::connect(&format!("127.0.0.1:{port}"), COOKIE, 903, CONNECT_TIMEOUT)
            .await;
    assert!(matches!(result, Err(ControlError::Unreachable { .. })), "{result:?}");
    assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_cookie_is_refused_at_start() {
    let result = start_control_server("127.0.0.1", 0, "", 904).await;
    assert!(matches!(result, Err(ControlError::InvalidRequest { .. })), "{result:?}");
}
