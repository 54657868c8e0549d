//! Writes the CRD YAML generated from the strom-crds types into `crds/` and
//! `charts/strom/crds/` of the workspace. Run it after changing a type:
//! `cargo run -p strom-crds --bin crdgen`.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("strom-crds must live inside the workspace")?;
    let files = strom_crds::crd_files()?;
    for dir in strom_crds::CRD_OUTPUT_DIRS {
        let dir = workspace.join(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (name, text) in &files {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
