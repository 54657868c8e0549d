//! The committed CRD YAML (`crds/*.yaml`, `charts/strom/crds/*.yaml`) must equal what the types
//! generate, so `kubectl apply` and the Helm chart install the schema the operator expects.

use std::path::Path;

#[test]
fn committed_crd_yaml_matches_the_types() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace");
    let files = strom_crds::crd_files().expect("CRDs serialize");
    assert_eq!(files.len(), 2, "one file per CRD");
    let mut stale = Vec::new();
    for dir in strom_crds::CRD_OUTPUT_DIRS {
        for (name, text) in &files {
            let path = workspace.join(dir).join(name);
            match std::fs::read_to_string(&path) {
                Ok(committed) if committed == *text => {}
                Ok(_) => stale.push(format!("{} is stale", path.display())),
                Err(e) => stale.push(format!("{} cannot be read: {e}", path.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nregenerate with `{}`",
        stale.join("\n"),
        strom_crds::REGENERATE_COMMAND
    );
}
