//! SMART through nosd's API on the demo (issue 14): `GET /api/v1/disks/{name}/smart` reads the
//! drive now, through the real agent's `smartctl.health` rule and the real smartctl. Loop
//! devices have no SMART, and nos says so with smartctl's own words instead of failing; names
//! that are no disk of the facts are refused before anything runs. What real drives report is
//! judged in `nos_host::health::smart`'s tests on captured output.
//!
//! Needs root, loop devices and smartmontools; otherwise a named SKIP.

use nos_tests::admin::{preconditions, setup_and_login};
use nos_tests::demo::Demo;
use nos_tests::http::Api;

#[test]
fn smart_of_a_loop_disk_is_not_available_with_smartctls_reason() {
    let test = "smart_of_a_loop_disk_is_not_available_with_smartctls_reason";
    if !preconditions(test) {
        return;
    }
    if !std::path::Path::new("/usr/sbin/smartctl").exists() {
        nos_tests::skip(test, "/usr/sbin/smartctl missing (install smartmontools)");
        return;
    }
    let demo = Demo::start(1);
    let loop_device = demo.loops()[0].clone();
    let kname = loop_device.trim_start_matches("/dev/").to_owned();
    let mut admin = setup_and_login(&demo);

    let reply = admin.api.get(&format!("/api/v1/disks/{kname}/smart"));
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.body["disk"], kname.as_str(), "{}", reply.raw);
    assert_eq!(reply.body["state"], "not-available", "{}", reply.raw);
    assert_eq!(
        reply.body["reasons"][0],
        format!("{loop_device}: Unable to detect device type"),
        "{}",
        reply.raw
    );
    // smartctl's exit bit 0 (device type not understood): reported, not an error.
    assert_eq!(reply.body["exit_status"], 1, "{}", reply.raw);
    // By path too.
    let by_path = admin.api.get(&format!(
        "/api/v1/disks/{}/smart",
        loop_device.replace('/', "%2F")
    ));
    assert_eq!(by_path.status, 200, "{}", by_path.raw);

    // Not disks of the facts: refused by name, nothing run.
    for name in [
        "sdzz",
        "loop0p9",
        "%2Fetc%2Fpasswd",
        "a%00b",
        "loop0;reboot",
    ] {
        let reply = admin.api.get(&format!("/api/v1/disks/{name}/smart"));
        assert_eq!(reply.code(), "404 disk.unknown", "{name}: {}", reply.raw);
    }
    // A session is needed.
    let mut anonymous = Api::new(&demo.url());
    let reply = anonymous.get(&format!("/api/v1/disks/{kname}/smart"));
    assert_eq!(reply.status, 401, "{}", reply.raw);
}
