//! `GET /csv/:model`: the header row, RFC 4180 quoting, the list's filters, sort, paging and
//! permissions, private fields kept out, and an empty list as a header-only file.

use reqwest::StatusCode;
use serde_json::json;

use crate::aggregate::{CLOSED, OWNED, TAG, world};
use crate::harness::{Account, TestServer, assert_error, create_as};

/// The header of the open `test` model: `_id`, its public fields in file order, the system
/// fields.
const TEST_HEADER: &str = "_id,foo,bar,n,flag,when,ref_id,yack,shmack,fulltext,address,composite_array,status,code,_owner_id,_deleted,createdAt,updatedAt";

struct Csv {
    status: StatusCode,
    content_type: String,
    disposition: String,
    text: String,
}

async fn get_csv(s: &TestServer, path: &str, who: Option<&Account>) -> Csv {
    let mut req = s.client.get(format!("{}{path}", s.base));
    if let Some(a) = who {
        req = req.basic_auth(&a.email, Some(&a.password));
    }
    let resp = req.send().await.unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    Csv {
        status: resp.status(),
        content_type,
        disposition,
        text: resp.text().await.unwrap(),
    }
}

/// A strict RFC 4180 reader, so the tests check what a spreadsheet would see.
fn parse(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "bare CR in {text:?}"),
            (false, '\n') => panic!("bare LF in {text:?}"),
            (false, c) => field.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "unterminated: {text:?}"
    );
    rows
}

/// Each data row as (column, value) pairs looked up by the header.
fn cell<'a>(rows: &'a [Vec<String>], row: usize, column: &str) -> &'a str {
    let i = rows[0]
        .iter()
        .position(|c| c == column)
        .unwrap_or_else(|| panic!("no column {column}: {:?}", rows[0]));
    &rows[row][i]
}

#[tokio::test]
async fn header_quoting_and_download_headers() {
    let s = TestServer::open().await;
    let id = s
        .create(
            "test",
            json!({"foo": "a,b", "bar": "say \"hi\"", "n": 5, "flag": true, "fulltext": "two\nlines\r\nhere",
                   "yack": {"k": [1, "x,y"]}, "shmack": ["do", "re"], "secret": "s3cr3t", "password": "pw-pw-pw"}),
        )
        .await;
    let csv = get_csv(&s, "/csv/test", None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert_eq!(csv.disposition, "attachment; filename=\"test.csv\"");
    assert!(
        csv.text.starts_with(&format!("{TEST_HEADER}\r\n")),
        "{}",
        csv.text
    );
    assert!(csv.text.contains("\"a,b\""), "{}", csv.text);
    assert!(csv.text.contains("\"say \"\"hi\"\"\""), "{}", csv.text);
    assert!(
        !csv.text.contains("s3cr3t") && !csv.text.contains("$2"),
        "{}",
        csv.text
    );
    let rows = parse(&csv.text);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].len(), rows[0].len());
    for (column, want) in [
        ("_id", id.as_str()),
        ("foo", "a,b"),
        ("bar", "say \"hi\""),
        ("n", "5"),
        ("flag", "true"),
        ("when", ""),
        ("ref_id", ""),
        ("fulltext", "two\nlines\r\nhere"),
        ("yack", "{\"k\":[1,\"x,y\"]}"),
        ("shmack", "[\"do\",\"re\"]"),
        ("address", "{\"city\":\"Cape Town\"}"),
        ("_deleted", "false"),
    ] {
        assert_eq!(cell(&rows, 1, column), want, "{column}");
    }
    assert_eq!(cell(&rows, 1, "createdAt").len(), 24);
}

#[tokio::test]
async fn follows_the_list_parameters() {
    let s = TestServer::open().await;
    let link = s.create("link", json!({"name": "L"})).await;
    for (foo, n) in [("a", 1), ("b", 3), ("c", 5), ("d", 7)] {
        s.create(
            "test",
            json!({"foo": foo, "bar": foo, "n": n, "ref_id": link}),
        )
        .await;
    }
    let csv = get_csv(
        &s,
        "/csv/test?filter[n]=$gte:3&sort=-n&limit=2&fields=foo,n",
        None,
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    let rows = parse(&csv.text);
    assert_eq!(rows[0], ["_id", "foo", "n"]);
    let got: Vec<(&str, &str)> = (1..rows.len())
        .map(|r| (cell(&rows, r, "foo"), cell(&rows, r, "n")))
        .collect();
    assert_eq!(got, [("d", "7"), ("c", "5")]);
    let rows = parse(
        &get_csv(&s, "/csv/test?sort=n&limit=2&page=2", None)
            .await
            .text,
    );
    assert_eq!((cell(&rows, 1, "foo"), cell(&rows, 2, "foo")), ("c", "d"));
    // Links are not populated into a cell.
    let rows = parse(
        &get_csv(&s, "/csv/test?populate=ref_id&filter[foo]=a", None)
            .await
            .text,
    );
    assert_eq!(cell(&rows, 1, "ref_id"), link);
    // Deleted documents only with showDeleted.
    let (_, listed) = s.get("/api/test?filter[foo]=a").await;
    let a = listed["data"][0]["_id"].as_str().unwrap().to_owned();
    s.delete(&format!("/api/test/{a}")).await;
    assert_eq!(parse(&get_csv(&s, "/csv/test", None).await.text).len(), 4);
    assert_eq!(
        parse(&get_csv(&s, "/csv/test?showDeleted=true", None).await.text).len(),
        5
    );
    // Bad parameters are the list's 400s.
    let got = s.get("/csv/test?filter[nope]=1").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "nope");
    let got = s.get("/csv/nope").await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
}

#[tokio::test]
async fn an_empty_list_is_a_header_only_file() {
    let s = TestServer::open().await;
    let csv = get_csv(&s, "/csv/link", None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(
        csv.text,
        "_id,name,_owner_id,_deleted,createdAt,updatedAt\r\n"
    );
    let csv = get_csv(&s, "/csv/test?filter[foo]=nothing", None).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.text, format!("{TEST_HEADER}\r\n"));
}

#[tokio::test]
async fn permissions_and_scope_as_the_list() {
    let w = world(&[("owned", OWNED), ("tag", TAG), ("closed", CLOSED)]).await;
    let s = &w.s;
    create_as(
        s,
        &w.alice,
        "owned",
        json!({"title": "a1", "n": 1, "secret": "hush"}),
    )
    .await;
    create_as(
        s,
        &w.bob,
        "owned",
        json!({"title": "b1", "n": 2, "secret": "hush"}),
    )
    .await;
    let anon = get_csv(s, "/csv/owned", None).await;
    assert_eq!(anon.status, StatusCode::FORBIDDEN, "{}", anon.text);
    assert!(anon.text.contains("\"code\""), "{}", anon.text);
    let closed = get_csv(s, "/csv/closed", Some(&w.alice)).await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN, "{}", closed.text);
    for (who, want) in [
        (&w.alice, vec!["a1"]),
        (&w.bob, vec!["b1"]),
        (&w.admin, vec!["a1", "b1"]),
    ] {
        let csv = get_csv(s, "/csv/owned?sort=n", Some(who)).await;
        assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
        assert!(!csv.text.contains("hush"), "{}", csv.text);
        let rows = parse(&csv.text);
        assert_eq!(
            rows[0].join(","),
            "_id,title,n,tag_id,_owner_id,_deleted,createdAt,updatedAt"
        );
        let titles: Vec<&str> = (1..rows.len()).map(|r| cell(&rows, r, "title")).collect();
        assert_eq!(titles, want, "{}", who.email);
    }
}

#[tokio::test]
async fn large_files_are_413() {
    let s = TestServer::open_with(&[("QUERY_LIMITS_MAX_RESPONSE_SIZE", "400")]).await;
    for i in 0..5 {
        s.create(
            "test",
            json!({"foo": format!("f{i}"), "bar": format!("b{i}")}),
        )
        .await;
    }
    let got = s.get("/csv/test").await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "400");
    assert_eq!(
        get_csv(&s, "/csv/test?fields=foo&limit=1", None)
            .await
            .status,
        StatusCode::OK
    );
}
