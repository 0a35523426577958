//! The one-cluster kubeconfig files `nautilus-proxy dev`, `nautilus-verify kubeconfig` and the
//! tests write: a cluster trusting one CA, a user with an optional bearer token or a credential
//! plugin that mints one (a staker's kubelet), and a context joining them. Every string is
//! written JSON-quoted, which YAML reads the same: an unquoted token such as `12345` or one with
//! `: `/`#` would be read as a number or cut short, and kubectl would refuse the file.

use base64::Engine as _;

/// What a kubeconfig calls its one cluster, user and context.
#[derive(Clone, Copy, Debug)]
pub struct Names<'a> {
    /// The cluster entry's name.
    pub cluster: &'a str,
    /// The user entry's name.
    pub user: &'a str,
    /// The context's name, which is also the current context.
    pub context: &'a str,
}

/// A kubeconfig for `server` whose only CA is `ca_pem` (PEM, as `certificate-authority-data`
/// carries it); with `token`, the user presents it as a bearer token, without one the user is
/// empty (client certificates or anonymous).
pub fn kubeconfig(names: &Names<'_>, server: &str, ca_pem: &[u8], token: Option<&str>) -> String {
    let user = match token {
        Some(token) => format!("  user:\n    token: {}\n", quote(token)),
        None => "  user: {}\n".to_string(),
    };
    document(names, server, ca_pem, &user)
}

/// A client-go credential plugin (`users[].user.exec`, `client.authentication.k8s.io/v1`): the
/// command client-go runs for a bearer token, again whenever the token it gave expires.
#[derive(Clone, Copy, Debug)]
pub struct ExecPlugin<'a> {
    /// The program (an absolute path, or a name looked up in `PATH`).
    pub command: &'a str,
    /// Its arguments.
    pub args: &'a [&'a str],
    /// Environment variables set for it, beside client-go's own.
    pub env: &'a [(&'a str, &'a str)],
}

/// A kubeconfig for `server` whose only CA is `ca_pem` and whose user gets its bearer tokens
/// from `plugin`, never asking for input (`interactiveMode: Never`: a kubelet has no terminal).
pub fn exec_kubeconfig(
    names: &Names<'_>,
    server: &str,
    ca_pem: &[u8],
    plugin: &ExecPlugin<'_>,
) -> String {
    let mut user = format!(
        "  user:\n    exec:\n      apiVersion: \"client.authentication.k8s.io/v1\"\n      \
         command: {}\n      interactiveMode: \"Never\"\n      provideClusterInfo: false\n",
        quote(plugin.command)
    );
    if plugin.args.is_empty() {
        user.push_str("      args: []\n");
    } else {
        user.push_str("      args:\n");
        for arg in plugin.args {
            user.push_str(&format!("      - {}\n", quote(arg)));
        }
    }
    if plugin.env.is_empty() {
        user.push_str("      env: []\n");
    } else {
        user.push_str("      env:\n");
        for (name, value) in plugin.env {
            user.push_str(&format!(
                "      - name: {}\n        value: {}\n",
                quote(name),
                quote(value)
            ));
        }
    }
    document(names, server, ca_pem, &user)
}

/// The file around one `user` entry (its lines, indented under `- name:`).
fn document(names: &Names<'_>, server: &str, ca_pem: &[u8], user: &str) -> String {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let (cluster, user_name, context) = (
        quote(names.cluster),
        quote(names.user),
        quote(names.context),
    );
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {cluster}\n\
         \x20 cluster:\n\
         \x20   server: {}\n\
         \x20   certificate-authority-data: {}\n\
         users:\n\
         - name: {user_name}\n\
         {user}\
         contexts:\n\
         - name: {context}\n\
         \x20 context:\n\
         \x20   cluster: {cluster}\n\
         \x20   user: {user_name}\n\
         current-context: {context}\n\
         preferences: {{}}\n",
        quote(server),
        quote(&ca_data),
    )
}

/// `text` as a YAML double-quoted scalar in JSON string syntax: `"` and `\` escaped, and every
/// character YAML would not keep as it is (control characters, which it refuses, and the
/// Unicode line and paragraph separators and byte-order mark, which it folds or drops) as a
/// `\u` escape with four hex digits.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Names<'static> = Names {
        cluster: "c",
        user: "u",
        context: "x",
    };

    /// `text` read back as JSON by core's YAML reader, which reads plain scalars as go-yaml does
    /// (`yes`, `0777` and `~` are no strings there). go-yaml alone folds U+0085, U+2028 and
    /// U+2029 as line breaks: their escapes are checked in the exact text.
    fn parse(text: &str) -> serde_json::Value {
        nautilus_core::yaml::to_json(text.as_bytes(), 1 << 20, 32).unwrap()
    }

    #[test]
    fn every_string_reads_back_exactly() {
        let server = "https://h:1/a: b #c \"q\" \\ \n\t";
        let ca = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let names = Names {
            cluster: "yes",
            user: "a: #b",
            context: "0777",
        };
        for token in [
            "12345",
            "true",
            "~",
            "a: #\"b",
            "line\nnext: 1",
            "- x",
            "*alias",
            "&anchor",
            "{x}",
            "[1]",
            "'q'",
            "\u{1}\u{7f}\u{85}\u{2028}\u{2029}\u{feff}é",
            "",
        ] {
            let text = kubeconfig(&names, server, ca, Some(token));
            let doc = parse(&text);
            assert_eq!(doc["users"][0]["user"]["token"], token, "{text}");
            assert_eq!(doc["users"][0]["name"], "a: #b", "{text}");
            assert_eq!(doc["clusters"][0]["name"], "yes", "{text}");
            assert_eq!(doc["clusters"][0]["cluster"]["server"], server, "{text}");
            assert_eq!(doc["contexts"][0]["name"], "0777", "{text}");
            assert_eq!(doc["contexts"][0]["context"]["cluster"], "yes");
            assert_eq!(doc["contexts"][0]["context"]["user"], "a: #b");
            assert_eq!(doc["current-context"], "0777");
            let data = doc["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap();
            let pem = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            assert_eq!(pem, ca);
        }
    }

    #[test]
    fn the_text_is_exact() {
        assert_eq!(
            kubeconfig(&NAMES, "https://10.0.0.1:6443", b"ca", Some("t0k")),
            "apiVersion: v1\nkind: Config\nclusters:\n- name: \"c\"\n  cluster:\n    \
             server: \"https://10.0.0.1:6443\"\n    certificate-authority-data: \"Y2E=\"\n\
             users:\n- name: \"u\"\n  user:\n    token: \"t0k\"\ncontexts:\n- name: \"x\"\n  \
             context:\n    cluster: \"c\"\n    user: \"u\"\ncurrent-context: \"x\"\n\
             preferences: {}\n"
        );
        assert_eq!(
            quote("a\\b\nc\t\u{7f}\u{85}\u{9f}\u{2028}\u{2029}\u{feff}é"),
            "\"a\\\\b\\u000ac\\u0009\\u007f\\u0085\\u009f\\u2028\\u2029\\ufeffé\""
        );
    }

    #[test]
    fn an_exec_plugin_reads_back_exactly() {
        let plugin = ExecPlugin {
            command: "/opt/bin/nautilus-seal",
            args: &[
                "--exec-credential",
                "--key-file",
                "/k: #1",
                "--node-id",
                "n1",
            ],
            env: &[("NAUTILUS_X", "a \"b\"\n")],
        };
        let text = exec_kubeconfig(&NAMES, "https://h:1", b"ca", &plugin);
        let doc = parse(&text);
        let exec = &doc["users"][0]["user"]["exec"];
        assert_eq!(
            exec["apiVersion"], "client.authentication.k8s.io/v1",
            "{text}"
        );
        assert_eq!(exec["command"], "/opt/bin/nautilus-seal");
        assert_eq!(
            exec["args"],
            serde_json::json!([
                "--exec-credential",
                "--key-file",
                "/k: #1",
                "--node-id",
                "n1"
            ])
        );
        assert_eq!(
            exec["env"],
            serde_json::json!([{"name": "NAUTILUS_X", "value": "a \"b\"\n"}])
        );
        assert_eq!(exec["interactiveMode"], "Never");
        assert_eq!(exec["provideClusterInfo"], false);
        assert!(doc["users"][0]["user"].get("token").is_none(), "{text}");
        assert_eq!(doc["clusters"][0]["cluster"]["server"], "https://h:1");
        assert_eq!(doc["current-context"], "x");
        let bare = ExecPlugin {
            command: "seal",
            args: &[],
            env: &[],
        };
        let doc = parse(&exec_kubeconfig(&NAMES, "https://h:1", b"ca", &bare));
        assert_eq!(
            doc["users"][0]["user"]["exec"]["args"],
            serde_json::json!([])
        );
        assert_eq!(
            doc["users"][0]["user"]["exec"]["env"],
            serde_json::json!([])
        );
    }

    #[test]
    fn without_a_token_the_user_is_empty() {
        let text = kubeconfig(&NAMES, "https://h:1", b"ca", None);
        assert!(
            text.contains("- name: \"u\"\n  user: {}\ncontexts:\n"),
            "{text}"
        );
        assert!(!text.contains("token"), "{text}");
        let doc = parse(&text);
        assert_eq!(doc["users"][0]["user"], serde_json::json!({}));
    }
}
