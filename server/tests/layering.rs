//! The server's modules form layers (`src/lib.rs` draws them), and a module may import only
//! from its own layer and those below. This test reads every `crate::` path in `src/` and
//! fails on one that points up, the way rust-analyzer's tidy tests hold the code base to its
//! rules with ordinary tests. (`shared/tools/cycles.py server/src` checks, in addition, that
//! no modules import each other in a circle, inside a layer too.)
//!
//! Module code names what it imports by `crate::` paths, never `super::` (outside `tests`
//! modules), so that this test and the cycle checker see every edge.

use std::path::{Path, PathBuf};

/// The layers, bottom first: a file of layer `i` may name layers `0..=i` only.
const LAYERS: &[&str] = &["limits", "metrics", "kinesis", "control", "runtime", "ops", "net", "ownership", "daemon"];

fn layer(name: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == name)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file that is not its unit tests or comments.
fn module_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The top-level modules a piece of code names through `crate::`: `crate::ops::node::Node`
/// names `ops`; `use crate::{limits, ops::x}` names `limits` and `ops`.
fn named_modules(code: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                let module: String = item.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !module.is_empty() {
                    named.push(module);
                }
            }
        } else {
            named.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    named
}

#[test]
fn modules_import_only_from_their_layer_and_below() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        let own = layer(&first)
            .unwrap_or_else(|| panic!("{}: module {first} is in no layer; add it to LAYERS", relative.display()));
        let code = module_code(&std::fs::read_to_string(file).unwrap());
        if code.contains("super::") {
            problems.push(format!("{}: names a module by `super::`; use a `crate::` path", relative.display()));
        }
        for module in named_modules(&code) {
            match layer(&module) {
                Some(target) if target > own => problems
                    .push(format!("{}: layer {first} imports crate::{module}, a layer above it", relative.display())),
                Some(_) => {}
                None => problems.push(format!("{}: crate::{module} is in no layer", relative.display())),
            }
        }
    }
    assert!(problems.is_empty(), "imports against the layering:\n{}", problems.join("\n"));
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
}

#[test]
fn the_reader_finds_every_kind_of_path() {
    let code = "use crate::ops::node::Node;\nuse crate::{limits, net::http};\nlet x = crate::runtime::routes::Routes::default();";
    assert_eq!(named_modules(code), ["ops", "limits", "net", "runtime"]);
    assert_eq!(
        module_code("use crate::ops::x; // crate::net\n#[cfg(test)]\nmod tests {\n use crate::daemon;\n}"),
        "use crate::ops::x; "
    );
}
