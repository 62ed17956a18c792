//! lsblk's JSON (relayed by the agent) with arbitrary by-id links: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // After the last NUL: "link\tkernel-name" lines for the by-id map.
    let (json, links) = text.rsplit_once('\0').unwrap_or((&text, ""));
    let by_id: Vec<(String, String)> = links
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(link, name)| (link.to_owned(), name.to_owned()))
        .collect();
    let _ = nos_host::facts::lsblk::parse(json, &by_id);
});
