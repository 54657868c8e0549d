//! openraft's storage conformance suite run against the file log store and the image state
//! machine: every `RaftLogStorage`/`RaftStateMachine` implementation must pass it.

use openraft::testing::StoreBuilder;
use openraft::testing::Suite;

use crate::log_store::FileLogStore;
use crate::raft_types::StorageError;
use crate::raft_types::TypeConfig;
use crate::state_machine::MetadataStateMachine;

struct FileStoreBuilder;

impl StoreBuilder<TypeConfig, FileLogStore, MetadataStateMachine, tempfile::TempDir>
    for FileStoreBuilder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, FileLogStore, MetadataStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir for a conformance case");
        let log = FileLogStore::open(dir.path()).expect("log store opens");
        let (sm, _publisher) = MetadataStateMachine::open(dir.path(), Some("conformance"))
            .expect("state machine opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn file_storage_passes_openraft_conformance_suite() {
    Suite::test_all(FileStoreBuilder).expect("conformance suite passes");
}
