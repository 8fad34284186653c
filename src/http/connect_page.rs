//! The pages a browser sees after a GHL Marketplace install. Plain server-rendered HTML without
//! JavaScript: the Holded key leaves the browser in one ordinary form POST and nothing else on
//! the page can read it. Every echoed value goes through `escape`.

/// Where every connect form posts, as `application/x-www-form-urlencoded`.
const CONNECT_ACTION: &str = "/oauth/connect";

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;\
line-height:1.5;color:#1a1a1a}\
form{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}\
h2{font-size:1.1rem;margin-top:0}\
code{overflow-wrap:anywhere}\
label{display:block;font-weight:600}\
input[type=password]{display:block;width:100%;box-sizing:border-box;padding:.5rem;\
margin:.25rem 0 .75rem}\
.error{color:#b00020}\
button{padding:.5rem 1rem}";

/// A connected location still waiting for its Holded API key.
pub struct PendingLocation<'a> {
    pub location_id: &'a str,
    /// Opaque signed text, returned unchanged in the hidden `ticket` field.
    pub ticket: &'a str,
    /// Why the previous attempt failed, shown next to the key field.
    pub error: Option<&'a str>,
}

/// One form per location, each posting `ticket` and `holded_api_key` to `/oauth/connect`.
pub fn connect_form(locations: &[PendingLocation<'_>]) -> String {
    let intro = match locations.len() {
        0 => "<p>No location is waiting for a Holded API key.</p>\n".to_owned(),
        1 => "<p>GoHighLevel is connected. Enter this location's Holded API key to start \
              syncing. You can create one in Holded under Settings → Developers.</p>\n"
            .to_owned(),
        n => format!(
            "<p>GoHighLevel is connected for {n} locations. Enter each location's Holded API \
             key to start syncing it. You can create one in Holded under Settings → \
             Developers.</p>\n"
        ),
    };
    let forms: String = locations
        .iter()
        .enumerate()
        .map(|(index, location)| location_form(index, location))
        .collect();
    page(
        "Connect Holded",
        &format!("<h1>Connect Holded</h1>\n{intro}{forms}"),
    )
}

/// `index` keeps element ids unique when one page holds several forms.
fn location_form(index: usize, location: &PendingLocation<'_>) -> String {
    let field_id = format!("holded-api-key-{index}");
    let error_id = format!("{field_id}-error");
    let (field_state, error) = match location.error {
        Some(message) => (
            format!(r#" aria-invalid="true" aria-describedby="{error_id}""#),
            format!(
                "<p class=\"error\" id=\"{error_id}\" role=\"alert\">{}</p>\n",
                escape(message)
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"<form method="post" action="{CONNECT_ACTION}">
<h2>Location <code>{location_id}</code></h2>
<input type="hidden" name="ticket" value="{ticket}">
<label for="{field_id}">Holded API key</label>
<input type="password" id="{field_id}" name="holded_api_key" required autocomplete="off"{field_state}>
{error}<button type="submit">Connect Holded</button>
</form>
"#,
        location_id = escape(location.location_id),
        ticket = escape(location.ticket),
    )
}

pub fn connected(location_id: &str) -> String {
    page(
        "Holded connected",
        &format!(
            "<h1>Holded connected</h1>\n<p>Holded connected for location <code>{}</code>; \
             syncing starts now.</p>\n<p>You can close this page.</p>\n",
            escape(location_id)
        ),
    )
}

/// A failed install: `title` and `message` are plain text.
pub fn failure(title: &str, message: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{}</h1>\n<p class=\"error\">{}</p>\n",
            escape(title),
            escape(message)
        ),
    )
}

/// `title` is plain text; `body_html` is already-escaped markup.
fn page(title: &str, body_html: &str) -> String {
    // no-referrer: the URL that led here can carry the OAuth code or a ticket.
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
{body_html}</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// Safe in element text and in double- or single-quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT_ID: &str = "<script>alert(1)</script>";
    const IMG_ERROR: &str = r#""><img src=x onerror=alert(1)>"#;

    /// Each `<form ...>...</form>` of a page, in order.
    fn forms(html: &str) -> Vec<&str> {
        html.split("<form ")
            .skip(1)
            .map(|rest| &rest[..rest.find("</form>").expect("closed form")])
            .collect()
    }

    fn assert_is_page(html: &str) {
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(html.contains(r#"<meta charset="utf-8">"#));
        assert!(html.contains(r#"<meta name="referrer" content="no-referrer">"#));
        assert!(html.trim_end().ends_with("</html>"));
        // Nothing is loaded from elsewhere and nothing runs.
        for forbidden in ["<script", "<img", "<link", "<iframe", "http://", "https://"] {
            assert!(!html.contains(forbidden), "{forbidden} in {html}");
        }
    }

    #[test]
    fn escape_replaces_markup_characters() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn escape_leaves_plain_text_alone() {
        assert_eq!(escape("loc_123 ünï ✓ 日本"), "loc_123 ünï ✓ 日本");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn connect_form_has_one_form_per_location() {
        let html = connect_form(&[
            PendingLocation {
                location_id: "loc-a",
                ticket: "ticket.a-1_x",
                error: None,
            },
            PendingLocation {
                location_id: "loc-b",
                ticket: "ticket.b-2_y",
                error: None,
            },
        ]);
        assert_is_page(&html);
        assert!(html.contains("<h1>Connect Holded</h1>"));
        assert!(html.contains("<title>Connect Holded</title>"));
        let forms = forms(&html);
        assert_eq!(forms.len(), 2);
        for (index, (form, (location, ticket))) in forms
            .iter()
            .zip([("loc-a", "ticket.a-1_x"), ("loc-b", "ticket.b-2_y")])
            .enumerate()
        {
            assert!(form.starts_with(r#"method="post" action="/oauth/connect">"#));
            assert!(form.contains(&format!("<code>{location}</code>")));
            assert!(form.contains(&format!(
                r#"<input type="hidden" name="ticket" value="{ticket}">"#
            )));
            let field_id = format!("holded-api-key-{index}");
            assert!(form.contains(&format!(
                r#"<label for="{field_id}">Holded API key</label>"#
            )));
            assert!(form.contains(&format!(
                r#"<input type="password" id="{field_id}" name="holded_api_key" required autocomplete="off">"#
            )));
            assert!(form.contains(r#"<button type="submit">"#));
            assert!(!form.contains("role=\"alert\""));
        }
    }

    #[test]
    fn an_error_shows_inline_only_for_its_location() {
        let html = connect_form(&[
            PendingLocation {
                location_id: "loc-a",
                ticket: "t-a",
                error: None,
            },
            PendingLocation {
                location_id: "loc-b",
                ticket: "t-b",
                error: Some("Holded rejected this API key"),
            },
        ]);
        let forms = forms(&html);
        assert!(!forms[0].contains("Holded rejected"));
        assert!(forms[1].contains(
            r#"<input type="password" id="holded-api-key-1" name="holded_api_key" required autocomplete="off" aria-invalid="true" aria-describedby="holded-api-key-1-error">"#
        ));
        assert!(forms[1].contains(
            r#"<p class="error" id="holded-api-key-1-error" role="alert">Holded rejected this API key</p>"#
        ));
        // The form is offered again with the same ticket, so the user can simply retry.
        assert!(forms[1].contains(r#"name="ticket" value="t-b""#));
    }

    #[test]
    fn no_pending_locations_renders_no_form() {
        let html = connect_form(&[]);
        assert_is_page(&html);
        assert!(forms(&html).is_empty());
        assert!(html.contains("No location is waiting"));
    }

    #[test]
    fn connect_form_escapes_everything_it_echoes() {
        let html = connect_form(&[PendingLocation {
            location_id: SCRIPT_ID,
            ticket: r#"abc" autofocus onfocus="alert(1)"#,
            error: Some(IMG_ERROR),
        }]);
        assert_is_page(&html);
        assert!(html.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"));
        assert!(html.contains(r#"value="abc&quot; autofocus onfocus=&quot;alert(1)""#));
        assert!(html.contains("role=\"alert\">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</p>"));
    }

    #[test]
    fn connected_names_the_location() {
        let html = connected("loc-a");
        assert_is_page(&html);
        assert!(
            html.contains("Holded connected for location <code>loc-a</code>; syncing starts now.")
        );
        assert!(forms(&html).is_empty());
        assert_is_page(&connected(SCRIPT_ID));
        assert!(connected(SCRIPT_ID).contains("&lt;script&gt;"));
    }

    #[test]
    fn failure_shows_title_and_message_escaped() {
        let html = failure("Install failed", "GoHighLevel did not grant access.");
        assert_is_page(&html);
        assert!(html.contains("<title>Install failed</title>"));
        assert!(html.contains("<h1>Install failed</h1>"));
        assert!(html.contains("GoHighLevel did not grant access."));

        let html = failure(SCRIPT_ID, IMG_ERROR);
        assert_is_page(&html);
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    }
}
