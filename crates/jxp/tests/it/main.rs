//! Integration tests: each starts the real server on 127.0.0.1:0 with a fresh SQLite database
//! and its own model files, and talks to it over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code fails loudly.

mod harness;

mod aggregate;
mod auth;
mod backup;
mod bad_input;
mod bulkwrite;
mod bulkwrite_many;
mod cache;
mod changes;
mod connections;
mod console;
mod cors;
mod counts;
mod crash;
mod crud;
mod csv;
mod delete;
mod explain;
mod fuzz;
mod generated;
mod hooks;
mod import;
mod indexes;
mod jsonb;
mod large_filters;
mod lists;
mod mcp;
mod meta;
mod operators;
mod parallel;
mod persistence;
mod populate;
mod query_route;
mod realtime;
mod samples;
mod scripts;
mod search;
mod sorted_lists;
mod startup;
mod unique;
mod validation;
mod working_set;
