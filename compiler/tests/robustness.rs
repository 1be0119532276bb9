//! The front end never panics: arbitrary bytes, and model files mutated at random.

use proptest::prelude::*;
use std::path::PathBuf;

/// 400 cases by default; `PROPTEST_CASES=100000` for a long local run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(400)
}

fn models() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("models/ exists").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "snn") {
            let text = std::fs::read_to_string(&path).expect("model is readable");
            out.push((path.display().to_string(), text));
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no models in {}", dir.display());
    out
}

/// Checks, and renders whatever comes out (rendering must not panic either).
fn check_and_render(source: &str) {
    let (model, diagnostics) = snnc_compiler::check(source);
    let rendered = snnc_compiler::diagnostic::render_to_string(&diagnostics, "fuzz.snn", source);
    if model.is_none() {
        assert!(diagnostics.iter().any(|d| d.is_error()), "no model and no error");
        assert!(!rendered.is_empty());
    }
    if let Some(model) = model {
        let _ = snnc_compiler::dump::dump(&model);
    }
}

/// Pieces of the language, so that mutations make near-valid text often.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ":",
    "=",
    "+=",
    "->",
    "/",
    "*",
    "**",
    "-",
    "//",
    "%",
    "<",
    ">=",
    "==",
    " and ",
    " or ",
    " not ",
    "\n",
    ";",
    ",",
    ".",
    "dv/dt",
    "xi",
    "rand()",
    "exp(",
    "mV",
    "ms",
    "2 ms",
    "1e-3",
    "0",
    "v",
    "w",
    "i",
    "j",
    "_post",
    "_pre",
    "(unless refractory)",
    "(event-driven)",
    "(summed)",
    "(constant)",
    "neuron ",
    "synapse ",
    "group ",
    "connect ",
    "const ",
    "monitor ",
    "shared ",
    "equations ",
    "threshold ",
    "reset ",
    "refractory ",
    "method rk4",
    "init ",
    "on_pre ",
    "every 10 ms ",
    " if ",
    " else ",
    "#",
    "\u{b5}",
    "\u{0}",
    "\"",
    "'",
];

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    Replace(usize, usize, usize),
    Duplicate(usize, usize),
}

fn apply(source: &str, mutations: &[Mutation]) -> String {
    let mut text: Vec<char> = source.chars().collect();
    for m in mutations {
        let n = text.len().max(1);
        match *m {
            Mutation::Delete(at, len) => {
                let at = at % n;
                let end = (at + len % 16).min(text.len());
                if at < end {
                    text.drain(at..end);
                }
            }
            Mutation::Insert(at, token) => {
                let at = at % (text.len() + 1);
                let token: Vec<char> = TOKENS[token % TOKENS.len()].chars().collect();
                text.splice(at..at, token);
            }
            Mutation::Replace(at, len, token) => {
                let at = at % n;
                let end = (at + len % 8).min(text.len());
                let token: Vec<char> = TOKENS[token % TOKENS.len()].chars().collect();
                if at <= end && end <= text.len() {
                    text.splice(at..end, token);
                }
            }
            Mutation::Duplicate(at, len) => {
                let at = at % n;
                let end = (at + len % 64).min(text.len());
                if at < end {
                    let copy: Vec<char> = text[at..end].to_vec();
                    text.splice(end..end, copy);
                }
            }
        }
    }
    text.into_iter().collect()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(a, b, c)| Mutation::Replace(a, b, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_and_render(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_token_soup_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..120)) {
        let text: String = tokens.iter().map(|&k| TOKENS[k]).collect();
        check_and_render(&text);
    }

    #[test]
    fn mutated_models_never_panic(model in any::<proptest::sample::Index>(), mutations in proptest::collection::vec(mutation(), 1..6)) {
        let models = models();
        let (_, source) = &models[model.index(models.len())];
        check_and_render(&apply(source, &mutations));
    }
}

#[test]
fn every_prefix_of_a_model_is_handled() {
    // Truncation at every character: unterminated blocks, half tokens, half units.
    for (_, source) in models().iter().take(2) {
        let chars: Vec<(usize, char)> = source.char_indices().collect();
        for (at, _) in chars.iter().step_by(3) {
            check_and_render(&source[..*at]);
        }
    }
}
