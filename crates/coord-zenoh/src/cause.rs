//! Zenoh's error messages, made readable: Zenoh appends the source location
//! (` at /…/file.rs:61.`) to each message, which tells an operator nothing.

use std::fmt::Display;

/// `error` as text, without Zenoh's source locations.
pub(crate) fn cause(error: &dyn Display) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(" at /") {
        let after = &rest[start..];
        let Some(rs) = after.find(".rs:") else { break };
        let digits = after[rs + 4..].bytes().take_while(u8::is_ascii_digit).count();
        let mut end = rs + 4 + digits;
        if after[end..].starts_with('.') {
            end += 1;
        }
        out.push_str(&rest[..start]);
        rest = &after[end..];
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_source_locations() {
        let raw = "Can not create a listener: [127.0.0.1:1: Address already in use (os error 98) at \
                   /root/.cargo/registry/src/x/zenoh-link-commons-1.10.2/src/tcp.rs:61.] at /root/y/unicast.rs:338.";
        assert_eq!(
            cause(&raw),
            "Can not create a listener: [127.0.0.1:1: Address already in use (os error 98)]"
        );
        assert_eq!(cause(&"plain"), "plain");
    }
}
