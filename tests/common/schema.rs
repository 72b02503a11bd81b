//! The socket API's JSON Schemas (schema/ at the repository root) applied to every answer the
//! integration tests receive: `Client` and `send_in_thread` call [`check_answer`] on each line
//! they read (a progress event line, one with `event`, against event.json), so an answer that gains a field the schema does not know, or loses one it
//! requires, fails the test that saw it, naming the path and the reason. Must NOT decide what
//! an answer should be: the schema files do; this only loads and applies them.

use std::sync::OnceLock;

use serde_json::Value;

/// Where the schema files are published (their `$id`s); each file lives at `BASE` + its name.
const BASE: &str = "https://posbridge.invalid/schema/";
const FILES: [&str; 6] = [
    "data.json",
    "event.json",
    "answer.v1.json",
    "answer.lifepos.json",
    "request.v1.json",
    "request.lifepos.json",
];

struct Compiled {
    schemas: boon::Schemas,
    v1: boon::SchemaIndex,
    lifepos: boon::SchemaIndex,
    event: boon::SchemaIndex,
    request_v1: boon::SchemaIndex,
    request_lifepos: boon::SchemaIndex,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/");
        let mut compiler = boon::Compiler::new();
        // `data` of a LIFE POS answer is a JSON string: its contentSchema is asserted too.
        compiler.enable_content_assertions();
        for file in FILES {
            let text = std::fs::read_to_string(format!("{dir}{file}"))
                .unwrap_or_else(|e| panic!("schema/{file}: {e}"));
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("schema/{file} is not JSON: {e}"));
            compiler
                .add_resource(&format!("{BASE}{file}"), json)
                .unwrap_or_else(|e| panic!("schema/{file}: {e}"));
        }
        let mut schemas = boon::Schemas::new();
        let mut compile = |file: &str| {
            compiler
                .compile(&format!("{BASE}{file}"), &mut schemas)
                .unwrap_or_else(|e| panic!("schema/{file} does not compile: {e:#}"))
        };
        let v1 = compile("answer.v1.json");
        let lifepos = compile("answer.lifepos.json");
        let event = compile("event.json");
        let request_v1 = compile("request.v1.json");
        let request_lifepos = compile("request.lifepos.json");
        Compiled {
            schemas,
            v1,
            lifepos,
            event,
            request_v1,
            request_lifepos,
        }
    })
}

/// Panics unless `line` (one answer line, without its newline) is valid against the schema of
/// its shape: a progress event's when it has an `event`, the LIFE POS contract's when it has an
/// `action`, else v1.
pub fn check_answer(line: &str) {
    let value: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("an answer line that is not JSON ({e}): {line:?}"));
    let c = compiled();
    let (index, name) = match (value.get("event"), value.get("action")) {
        (Some(_), _) => (c.event, "event.json"),
        (None, Some(_)) => (c.lifepos, "answer.lifepos.json"),
        (None, None) => (c.v1, "answer.v1.json"),
    };
    if let Err(e) = c.schemas.validate(&value, index) {
        panic!("an answer does not match schema/{name}:\n{e:#}\nthe answer: {line}");
    }
}

/// Why `request` does not match the request schema of its shape (the LIFE POS contract's when
/// its action is one of the contract's names, else v1); `None` when it does.
pub fn request_errors(request: &Value) -> Option<String> {
    let c = compiled();
    let lifepos = request["action"]
        .as_str()
        .is_some_and(|a| a.starts_with("ru.lifepay."));
    let index = if lifepos {
        c.request_lifepos
    } else {
        c.request_v1
    };
    c.schemas
        .validate(request, index)
        .err()
        .map(|e| format!("{e:#}"))
}
