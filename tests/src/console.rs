//! A browser's side of the review console without a browser: form posts
//! and cookies over real HTTP, for the route tests. The browser tests
//! (`tests/browser/`) drive a real Chromium through the same pages.

use std::collections::HashMap;

/// One response: status, headers (lower-case names), body text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get("location").map_or("", String::as_str)
    }
}

/// A console session: the cookie a login set, and the CSRF token the
/// last page carried.
pub struct Console {
    pub url: String,
    pub cookie: Option<String>,
    agent: ureq::Agent,
}

impl Console {
    pub fn new(url: &str) -> Console {
        Console {
            url: url.to_owned(),
            cookie: None,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .into(),
        }
    }

    /// Logs in; the reply of the login form.
    pub fn login(url: &str, user: &str, password: &str) -> (Console, Reply) {
        let mut c = Console::new(url);
        let r = c.post_form("/login", &[("username", user), ("password", password)]);
        if let Some(set) = r.headers.get("set-cookie") {
            c.cookie = set.split(';').next().map(str::to_owned);
        }
        (c, r)
    }

    fn reply(resp: ureq::http::Response<ureq::Body>) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let body = resp.into_body().read_to_string().unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.url));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        Console::reply(req.call().expect("GET"))
    }

    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let mut req = self.agent.get(format!("{}{path}", self.url));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.call().expect("GET");
        let status = resp.status().as_u16();
        (status, resp.into_body().read_to_vec().unwrap_or_default())
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        Console::reply(req.send(body.as_bytes()).expect("POST"))
    }

    /// The CSRF token a page carries.
    pub fn csrf_of(page: &str) -> String {
        let key = "name=\"csrf\" value=\"";
        page.find(key)
            .map(|i| {
                page[i + key.len()..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes a review step on an inspection as the page offers it: reads
    /// the page for the token, then posts the step.
    pub fn step(&self, id: &str, step: &str, comment: &str) -> Reply {
        let page = self.get(&format!("/inspections/{id}"));
        let csrf = Console::csrf_of(&page.body);
        self.post_form(
            &format!("/inspections/{id}/{step}"),
            &[("csrf", &csrf), ("comment", comment)],
        )
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
