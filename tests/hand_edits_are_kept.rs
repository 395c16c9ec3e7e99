//! A configuration file edited by hand is loaded as written. Deleting a line by hand makes a file
//! shorter than the length in its header, and that once counted as torn: the last good copy was
//! loaded with only a warning, silently undoing the edit (here: switching the API's IP filter
//! back off). A rename-based write cannot tear a file halfway, so only an empty or NUL-filled
//! file is torn; an edited file is loaded, and at start becomes its own last good copy.

mod common;

use common::ConfigDir;
use common::daemon::InProcess;
use rampart::config;
use rampart::storage::writer::AtomicWriter;

const WRITTEN: &str = "# the box's application\nipFilterEnabled=false\nremoteAllowedCIDR=127.0.0.1\n";

fn app_file(dir: &ConfigDir) -> std::path::PathBuf {
    dir.file("apps/LiveApp.properties")
}

#[test]
fn a_line_deleted_by_hand_stays_deleted_across_starts_and_power_cuts() {
    let dir = ConfigDir::loopback("");
    std::fs::create_dir_all(dir.file("apps")).expect("apps dir");
    AtomicWriter::new(&dir.file("apps"))
        .write("LiveApp.properties", WRITTEN.as_bytes())
        .expect("written as rampart does");
    assert!(!config::load(Some(dir.path())).expect("loads").settings.apps["LiveApp"].ip_filter_enabled);

    let text = std::fs::read_to_string(app_file(&dir)).expect("read");
    std::fs::write(app_file(&dir), text.replace("ipFilterEnabled=false\n", "")).expect("edited by hand");
    let loaded = config::load(Some(dir.path())).expect("loads");
    assert!(loaded.settings.apps["LiveApp"].ip_filter_enabled, "the edit is in force: the default, true");
    assert!(loaded.warnings.iter().any(|w| w.message.contains("edited by hand")), "{:?}", loaded.warnings);

    // A start adopts the edit as the last good copy: a power cut that empties the file later
    // falls back to the edit, not to the line the user deleted.
    let daemon = InProcess::start_in(dir);
    assert!(daemon.services.settings.now().apps["LiveApp"].ip_filter_enabled);
    let dir = daemon.stop();
    let good = std::fs::read_to_string(dir.file("apps/.LiveApp.properties.good")).expect("good copy");
    assert!(!good.contains("ipFilterEnabled") && good.contains("remoteAllowedCIDR"), "{good}");
    let loaded = config::load(Some(dir.path())).expect("loads");
    assert!(loaded.warnings.is_empty(), "adopted: no longer an edit to warn of: {:?}", loaded.warnings);

    std::fs::write(app_file(&dir), [0u8; 40]).expect("torn as a power cut leaves it");
    let loaded = config::load(Some(dir.path())).expect("loads");
    assert!(loaded.settings.apps["LiveApp"].ip_filter_enabled, "the good copy holds the edit");
    assert!(loaded.warnings.iter().any(|w| w.message.contains("last good copy")), "{:?}", loaded.warnings);
}
