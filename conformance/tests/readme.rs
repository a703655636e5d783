//! The session example in README.md is a valid session, so the documentation cannot drift
//! from the parser unnoticed.

#![cfg(test)]

use chat_conformance::session::Session;

#[test]
fn the_readme_example_parses() {
    let readme = include_str!("../README.md");
    let section = readme.split("## The session file format").nth(1).unwrap();
    let example = section
        .split("```text\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let session = Session::parse("readme", example).unwrap();
    assert_eq!(session.checks, ["NICK-3", "NICK-5", "NICK-8"]);
    assert!(session.steps.len() > 5);
}
