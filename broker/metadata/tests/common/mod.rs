//! Helpers shared by the metadata integration tests.

use strom_metadata::Controller;
use strom_metadata::ControllerError;
use strom_metadata::controller_ops::BrokerRegistrationRequest;
use strom_metadata::controller_ops::HeartbeatRequest;
use uuid::Uuid;

/// Registers a broker and heartbeats it once, as a started broker does, so it is unfenced.
pub(crate) async fn register_live(
    controller: &Controller,
    node_id: i32,
    host: &str,
    port: u16,
    rack: Option<&str>,
) -> Result<Uuid, ControllerError> {
    let incarnation = Uuid::new_v4();
    controller
        .register(BrokerRegistrationRequest {
            node_id,
            incarnation,
            host: host.to_owned(),
            port,
            rack: rack.map(str::to_owned),
        })
        .await?;
    let reply = controller
        .heartbeat(HeartbeatRequest {
            node_id,
            incarnation,
            metadata_offset: controller.quorum().image().offset,
            want_shutdown: false,
        })
        .await?;
    assert!(!reply.fenced, "a caught-up broker is unfenced");
    Ok(incarnation)
}
