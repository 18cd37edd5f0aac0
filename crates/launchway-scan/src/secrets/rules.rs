//! Secret detection rules: the model shared by the built-in set and
//! gitleaks TOML configs, and the built-in set itself.

use regex::bytes::Regex;

/// Where an allowlist regex is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Secret,
    Match,
    Line,
}

#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    pub description: String,
    /// `true` when every listed condition must hold (gitleaks `condition = "AND"`).
    pub and: bool,
    pub target: Target,
    pub regexes: Vec<Regex>,
    pub paths: Vec<Regex>,
    pub stopwords: Vec<String>,
    pub commits: Vec<String>,
    /// Launchway's own check: the secret reads like a code identifier.
    pub identifiers: bool,
}

/// Words code identifiers are made of.
const WORDS: &[&str] = &[
    "access",
    "account",
    "accounts",
    "action",
    "active",
    "addr",
    "address",
    "agent",
    "algorithm",
    "alias",
    "align",
    "alloc",
    "allow",
    "app",
    "apply",
    "args",
    "array",
    "assert",
    "attr",
    "attribute",
    "auth",
    "authority",
    "auto",
    "base",
    "bind",
    "block",
    "body",
    "bool",
    "boolean",
    "bound",
    "buf",
    "buffer",
    "build",
    "builder",
    "byte",
    "bytes",
    "cache",
    "call",
    "callback",
    "cancel",
    "cert",
    "certificate",
    "chain",
    "change",
    "channel",
    "char",
    "check",
    "child",
    "cipher",
    "class",
    "clear",
    "client",
    "close",
    "code",
    "color",
    "column",
    "command",
    "common",
    "compare",
    "compat",
    "config",
    "connect",
    "connection",
    "const",
    "container",
    "content",
    "context",
    "control",
    "copy",
    "count",
    "create",
    "crypt",
    "current",
    "cursor",
    "data",
    "date",
    "debug",
    "decode",
    "decs",
    "default",
    "define",
    "delete",
    "deprecated",
    "deprecation",
    "depth",
    "desc",
    "descriptor",
    "device",
    "dict",
    "direction",
    "disable",
    "disabled",
    "display",
    "document",
    "domain",
    "element",
    "enable",
    "enabled",
    "encode",
    "encrypt",
    "encryption",
    "end",
    "entry",
    "enum",
    "env",
    "error",
    "errors",
    "event",
    "events",
    "exception",
    "expr",
    "expression",
    "extension",
    "factory",
    "field",
    "file",
    "filter",
    "flag",
    "flags",
    "float",
    "format",
    "frame",
    "from",
    "func",
    "function",
    "generate",
    "generated",
    "generic",
    "get",
    "global",
    "group",
    "handle",
    "handler",
    "handlers",
    "hash",
    "header",
    "helper",
    "helpers",
    "hidden",
    "host",
    "icon",
    "index",
    "info",
    "init",
    "inner",
    "input",
    "insert",
    "instance",
    "int",
    "interface",
    "internal",
    "item",
    "iter",
    "iterator",
    "key",
    "keys",
    "keyword",
    "kind",
    "label",
    "layout",
    "len",
    "length",
    "level",
    "lib",
    "like",
    "limit",
    "line",
    "link",
    "list",
    "load",
    "local",
    "lock",
    "log",
    "login",
    "logout",
    "lookup",
    "lower",
    "main",
    "manager",
    "map",
    "mask",
    "match",
    "max",
    "medium",
    "member",
    "memory",
    "message",
    "meta",
    "method",
    "min",
    "mode",
    "model",
    "module",
    "name",
    "node",
    "none",
    "notification",
    "notify",
    "null",
    "number",
    "oauth",
    "object",
    "offset",
    "only",
    "open",
    "option",
    "options",
    "order",
    "output",
    "owner",
    "page",
    "pair",
    "param",
    "parent",
    "parse",
    "parser",
    "part",
    "pass",
    "password",
    "path",
    "pattern",
    "pending",
    "point",
    "pointer",
    "policy",
    "pool",
    "port",
    "prefix",
    "prev",
    "previous",
    "primary",
    "print",
    "private",
    "process",
    "property",
    "protection",
    "provider",
    "proxy",
    "public",
    "query",
    "queue",
    "range",
    "read",
    "reader",
    "record",
    "redirect",
    "ref",
    "reference",
    "register",
    "request",
    "reset",
    "resolve",
    "resource",
    "response",
    "result",
    "results",
    "retries",
    "retry",
    "return",
    "role",
    "root",
    "route",
    "rule",
    "runtime",
    "schema",
    "scope",
    "secondary",
    "secret",
    "section",
    "security",
    "select",
    "send",
    "server",
    "service",
    "session",
    "set",
    "setting",
    "shape",
    "sign",
    "signature",
    "size",
    "slot",
    "source",
    "space",
    "spec",
    "spread",
    "stack",
    "start",
    "state",
    "static",
    "status",
    "storage",
    "store",
    "stream",
    "string",
    "struct",
    "style",
    "subscription",
    "support",
    "supported",
    "sync",
    "system",
    "table",
    "tag",
    "target",
    "task",
    "template",
    "test",
    "text",
    "thread",
    "time",
    "timeout",
    "timer",
    "token",
    "tokens",
    "transform",
    "tree",
    "type",
    "types",
    "unit",
    "update",
    "upper",
    "uri",
    "url",
    "usage",
    "user",
    "util",
    "valid",
    "value",
    "values",
    "var",
    "vector",
    "verify",
    "version",
    "view",
    "visible",
    "warning",
    "window",
    "with",
    "word",
    "worker",
    "write",
    "writer",
];

/// Whether a value reads like a code identifier (`X509PrivateKeyProtection`,
/// `nl80211_key_attributes`, `_prevKeyPath4`): two or more of its letter
/// segments are common identifier words. Random tokens almost never are.
pub fn looks_like_identifier(s: &[u8]) -> bool {
    let text = String::from_utf8_lossy(s);
    let mut segments: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        let boundary = !c.is_ascii_alphabetic() || (c.is_ascii_uppercase() && prev_lower);
        if boundary && !cur.is_empty() {
            segments.push(std::mem::take(&mut cur));
        }
        if c.is_ascii_alphabetic() {
            cur.push(c.to_ascii_lowercase());
        }
        prev_lower = c.is_ascii_lowercase();
    }
    if !cur.is_empty() {
        segments.push(cur);
    }
    let known = |w: &str| {
        WORDS.binary_search(&w).is_ok()
            || w.strip_suffix('s')
                .is_some_and(|w| WORDS.binary_search(&w).is_ok())
    };
    segments.iter().filter(|s| s.len() >= 3 && known(s)).count() >= 2
}

/// What an allowlist is asked about one finding.
pub struct Candidate<'a> {
    pub secret: &'a [u8],
    pub full_match: &'a [u8],
    pub line: &'a [u8],
    pub path: &'a str,
    pub commit: Option<&'a str>,
}

impl Allowlist {
    /// Whether this allowlist excuses every finding in a file by its path
    /// alone, so the file need not be read.
    pub fn allows_path(&self, path: &str) -> bool {
        let path_only = self.regexes.is_empty()
            && self.stopwords.is_empty()
            && self.commits.is_empty()
            && !self.identifiers;
        path_only
            && !self.paths.is_empty()
            && self.paths.iter().any(|r| r.is_match(path.as_bytes()))
    }

    pub fn allows(&self, c: &Candidate<'_>) -> bool {
        let target = match self.target {
            Target::Secret => c.secret,
            Target::Match => c.full_match,
            Target::Line => c.line,
        };
        let mut checks: Vec<bool> = Vec::new();
        if !self.regexes.is_empty() {
            checks.push(self.regexes.iter().any(|r| r.is_match(target)));
        }
        if !self.paths.is_empty() {
            checks.push(self.paths.iter().any(|r| r.is_match(c.path.as_bytes())));
        }
        if !self.stopwords.is_empty() {
            let lower = String::from_utf8_lossy(c.secret).to_ascii_lowercase();
            checks.push(
                self.stopwords
                    .iter()
                    .any(|w| lower.contains(&w.to_ascii_lowercase())),
            );
        }
        if !self.commits.is_empty() {
            checks.push(
                c.commit
                    .is_some_and(|h| self.commits.iter().any(|x| x == h)),
            );
        }
        if self.identifiers {
            checks.push(looks_like_identifier(c.secret));
        }
        if checks.is_empty() {
            return false;
        }
        if self.and {
            checks.iter().all(|b| *b)
        } else {
            checks.iter().any(|b| *b)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub regex: Option<Regex>,
    /// The capture group holding the secret (0 = the whole match).
    pub secret_group: usize,
    /// Minimum Shannon entropy of the secret, when set.
    pub entropy: Option<f64>,
    /// Lowercase keywords, one of which must appear for the rule to run.
    pub keywords: Vec<String>,
    /// A rule may match on file paths (alone, or together with `regex`).
    pub path: Option<Regex>,
    pub tags: Vec<String>,
    pub allowlists: Vec<Allowlist>,
    /// When set, every match contains one of the keywords, starts on that
    /// keyword's line and ends at most this many bytes after it: the regex
    /// then runs only on the lines around keyword hits, not the whole file.
    pub window: Option<usize>,
}

fn rule(id: &str, description: &str, regex: &str, keywords: &[&str]) -> Rule {
    Rule {
        id: id.to_string(),
        description: description.to_string(),
        // Built-in patterns are ASCII (faster, smaller automata) and compiled
        // at start-up; a typo is a bug the tests catch.
        regex: Regex::new(&format!("(?-u){regex}")).ok(),
        secret_group: 0,
        entropy: None,
        keywords: keywords.iter().map(|k| k.to_ascii_lowercase()).collect(),
        path: None,
        tags: Vec::new(),
        allowlists: Vec::new(),
        window: None,
    }
}

/// A secret in an assignment after a keyword, e.g. `api_key = "…"`: group 1.
fn assigned(
    id: &str,
    description: &str,
    key: &str,
    value: &str,
    keywords: &[&str],
    entropy: f64,
) -> Rule {
    let re = format!(
        r#"(?i)[\w.-]{{0,50}}?(?:{key})(?:[ \t\w.-]{{0,20}})[\s'"]{{0,3}}(?:=|>|:{{1,3}}=|\|\||:|=>|\?=|,)[\x60'"\s=]{{0,5}}({value})(?:[\x60'"\s;]|\\[nr]|$)"#
    );
    let mut r = rule(id, description, &re, keywords);
    r.secret_group = 1;
    r.entropy = Some(entropy);
    // The pattern's longest tail after the keyword: 20 + 3 + 3 + 5 bytes of
    // separators, a value of at most 150 and one closing byte; the prefix
    // before it (`[\w.-]`) never crosses a line.
    r.window = Some(20 + 3 + 3 + 5 + 150 + 2);
    r
}

fn grouped(mut r: Rule, group: usize, entropy: Option<f64>) -> Rule {
    r.secret_group = group;
    r.entropy = entropy;
    r
}

/// Launchway's built-in rules. Each id is stable: baselines and ignore
/// lists refer to it.
pub fn defaults() -> Vec<Rule> {
    let b = r"(?:[\x60'\x22\s;=:(,]|^)"; // a token boundary before
    let e = r"(?:[\x60'\x22\s;,)]|\\[nr]|$)"; // …and after
    let mut rules = vec![
        // Cloud providers.
        grouped(
            rule(
                "aws-access-key-id",
                "AWS access key ID",
                &format!(r"{b}((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{{16}}){e}"),
                &["akia", "asia", "abia", "acca", "a3t"],
            ),
            1,
            Some(3.0),
        ),
        assigned(
            "aws-secret-access-key",
            "AWS secret access key",
            r"aws_?secret_?(?:access_?)?key|secret_?access_?key",
            r"[A-Za-z0-9/+=]{40}",
            &["aws", "secret"],
            3.5,
        ),
        grouped(
            rule(
                "gcp-api-key",
                "Google API key",
                &format!(r"{b}(AIza[\w-]{{35}}){e}"),
                &["aiza"],
            ),
            1,
            Some(3.0),
        ),
        // A key file, not any mention of the type: the private key must
        // follow (Google writes it within the next few fields).
        rule(
            "gcp-service-account",
            "Google Cloud service account key file",
            r#""type"\s*:\s*"service_account"[^}]{0,1500}?"private_key"\s*:\s*"-----BEGIN"#,
            &["service_account"],
        ),
        grouped(
            rule(
                "azure-ad-client-secret",
                "Azure AD client secret",
                &format!(r"{b}([a-zA-Z0-9_~.]{{3}}\dQ~[a-zA-Z0-9_~.-]{{31,34}}){e}"),
                &["q~"],
            ),
            1,
            Some(3.0),
        ),
        assigned(
            "azure-storage-key",
            "Azure storage account key",
            r"accountkey|azure_?storage_?key",
            r"[A-Za-z0-9+/]{86}==",
            &["accountkey", "azure"],
            4.0,
        ),
        grouped(
            rule(
                "alibaba-access-key-id",
                "Alibaba Cloud AccessKey ID",
                &format!(r"{b}(LTAI[a-zA-Z0-9]{{20}}){e}"),
                &["ltai"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "digitalocean-token",
                "DigitalOcean token",
                r"\b(do[opr]_v1_[a-f0-9]{64})\b",
                &["dop_v1_", "doo_v1_", "dor_v1_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "heroku-api-key-v2",
                "Heroku API key",
                r"\b(HRKU-AA[0-9a-zA-Z_-]{58})\b",
                &["hrku-aa"],
            ),
            1,
            Some(4.0),
        ),
        assigned(
            "heroku-api-key",
            "Heroku API key",
            r"heroku",
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            &["heroku"],
            3.0,
        ),
        grouped(
            rule(
                "cloudflare-origin-ca-key",
                "Cloudflare Origin CA key",
                r"\b(v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b",
                &["v1.0-"],
            ),
            1,
            None,
        ),
        assigned(
            "cloudflare-api-key",
            "Cloudflare API key",
            r"cloudflare",
            r"[a-z0-9_-]{40}",
            &["cloudflare"],
            3.5,
        ),
        // Source forges and registries.
        grouped(
            rule(
                "github-pat",
                "GitHub personal access token",
                r"\b(ghp_[0-9a-zA-Z]{36})\b",
                &["ghp_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "github-fine-grained-pat",
                "GitHub fine-grained personal access token",
                r"\b(github_pat_\w{82})\b",
                &["github_pat_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "github-oauth",
                "GitHub OAuth access token",
                r"\b(gho_[0-9a-zA-Z]{36})\b",
                &["gho_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "github-app-token",
                "GitHub app token",
                r"\b((?:ghu|ghs)_[0-9a-zA-Z]{36})\b",
                &["ghu_", "ghs_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "github-refresh-token",
                "GitHub refresh token",
                r"\b(ghr_[0-9a-zA-Z]{36})\b",
                &["ghr_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "gitlab-pat",
                "GitLab personal access token",
                r"\b(glpat-[\w-]{20})\b",
                &["glpat-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "gitlab-pipeline-trigger-token",
                "GitLab pipeline trigger token",
                r"\b(glptt-[0-9a-f]{40})\b",
                &["glptt-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "gitlab-runner-token",
                "GitLab runner registration or authentication token",
                r"\b(GR1348941[\w-]{20}|glrt-[\w-]{20})\b",
                &["gr1348941", "glrt-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "gitlab-deploy-token",
                "GitLab deploy token",
                r"\b(gldt-[0-9a-zA-Z_-]{20})\b",
                &["gldt-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "bitbucket-client-secret",
                "Bitbucket client secret",
                r"(?i)bitbucket[\w.-]{0,20}[\s'\x22]{0,3}(?:=|:)[\s'\x22]{0,5}([a-z0-9=_-]{64})\b",
                &["bitbucket"],
            ),
            1,
            Some(3.5),
        ),
        grouped(
            rule(
                "npm-access-token",
                "npm access token",
                r"\b(npm_[a-zA-Z0-9]{36})\b",
                &["npm_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "pypi-upload-token",
                "PyPI upload token",
                r"\b(pypi-AgEIcHlwaS5vcmc[\w-]{50,})\b",
                &["pypi-ageichlwas5vcmc"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "rubygems-api-token",
                "RubyGems API token",
                r"\b(rubygems_[a-f0-9]{48})\b",
                &["rubygems_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "dockerhub-pat",
                "Docker Hub personal access token",
                r"\b(dckr_pat_[a-zA-Z0-9_-]{27})\b",
                &["dckr_pat_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "huggingface-access-token",
                "Hugging Face access token",
                r"\b(hf_[a-zA-Z]{34})\b",
                &["hf_"],
            ),
            1,
            Some(3.0),
        ),
        // Chat, mail and communication.
        grouped(
            rule(
                "slack-bot-token",
                "Slack bot token",
                r"\b(xoxb-[0-9]{10,13}-[0-9]{10,13}[a-zA-Z0-9-]*)\b",
                &["xoxb"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "slack-user-token",
                "Slack user token",
                r"\b(xox[pe](?:-[0-9]{10,13}){3}-[a-zA-Z0-9-]{28,34})\b",
                &["xoxp-", "xoxe-"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "slack-app-token",
                "Slack app-level token",
                r"(?i)\b(xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)\b",
                &["xapp"],
            ),
            1,
            None,
        ),
        rule(
            "slack-webhook-url",
            "Slack webhook URL",
            r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
            &["hooks.slack.com"],
        ),
        grouped(
            rule(
                "discord-webhook-url",
                "Discord webhook URL",
                r"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/[\w-]{60,68})",
                &["discord"],
            ),
            1,
            None,
        ),
        assigned(
            "discord-bot-token",
            "Discord bot token",
            r"discord",
            r"[a-z0-9_-]{24}\.[a-z0-9_-]{6}\.[a-z0-9_-]{27,38}",
            &["discord"],
            3.0,
        ),
        grouped(
            rule(
                "telegram-bot-token",
                "Telegram bot token",
                r"(?i)(?:telegram|tgbot|bot_?token)[\w.-]{0,20}[\s'\x22]{0,3}(?:=|:)[\s'\x22]{0,5}([0-9]{5,16}:A[a-z0-9_-]{34})\b",
                &["telegram", "tgbot", "bot_token", "bottoken"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "twilio-api-key",
                "Twilio API key",
                r"\b(SK[0-9a-fA-F]{32})\b",
                &["sk"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "sendgrid-api-token",
                "SendGrid API token",
                r"\b(SG\.[a-zA-Z0-9=_.-]{66})\b",
                &["sg."],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "mailgun-private-api-token",
                "Mailgun private API token",
                r"\b(key-[a-f0-9]{32})\b",
                &["key-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "mailchimp-api-key",
                "Mailchimp API key",
                r"(?i)(?:mailchimp|mc_?api)[\w.-]{0,20}[\s'\x22]{0,3}(?:=|:)[\s'\x22]{0,5}([a-f0-9]{32}-us\d{1,2})\b",
                &["mailchimp", "mc_api", "mcapi"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "sendinblue-api-token",
                "Brevo (Sendinblue) API token",
                r"\b(xkeysib-[a-f0-9]{64}-[a-z0-9]{16})\b",
                &["xkeysib-"],
            ),
            1,
            None,
        ),
        // Payments and commerce.
        grouped(
            rule(
                "stripe-access-token",
                "Stripe secret or restricted key",
                r"\b((?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99})\b",
                &[
                    "sk_test", "sk_live", "sk_prod", "rk_test", "rk_live", "rk_prod",
                ],
            ),
            1,
            Some(2.0),
        ),
        grouped(
            rule(
                "square-access-token",
                "Square access token",
                r"\b((?:EAAA|sq0atp-)[\w-]{22,60})\b",
                &["eaaa", "sq0atp-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "shopify-token",
                "Shopify access token or shared secret",
                r"\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\b",
                &["shpat_", "shpca_", "shppa_", "shpss_"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "flutterwave-secret-key",
                "Flutterwave secret key",
                r"\b(FLWSECK_TEST-[a-h0-9]{32}-X)\b",
                &["flwseck_test"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "shippo-api-token",
                "Shippo API token",
                r"\b(shippo_(?:live|test)_[a-fA-F0-9]{40})\b",
                &["shippo_"],
            ),
            1,
            None,
        ),
        // AI and data platforms.
        grouped(
            rule(
                "openai-api-key",
                "OpenAI API key",
                r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{58,74}T3BlbkFJ[A-Za-z0-9_-]{58,74}|sk-[a-zA-Z0-9]{20}T3BlbkFJ[a-zA-Z0-9]{20})\b",
                &["t3blbkfj"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "anthropic-api-key",
                "Anthropic API key",
                r"\b(sk-ant-(?:api03|admin01)-[a-zA-Z0-9_-]{93}AA)\b",
                &["sk-ant-api03", "sk-ant-admin01"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "databricks-api-token",
                "Databricks API token",
                r"\b(dapi[a-f0-9]{32}(?:-\d)?)\b",
                &["dapi"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "prefect-api-token",
                "Prefect API token",
                r"\b(pnu_[a-zA-Z0-9]{36})\b",
                &["pnu_"],
            ),
            1,
            Some(2.0),
        ),
        // Infrastructure and observability.
        grouped(
            rule(
                "hashicorp-vault-token",
                "HashiCorp Vault service token",
                r"\b(hvs\.[\w-]{90,120})\b",
                &["hvs."],
            ),
            1,
            Some(3.5),
        ),
        grouped(
            rule(
                "terraform-cloud-token",
                "Terraform Cloud API token",
                r"\b([a-z0-9]{14}\.atlasv1\.[a-z0-9=_-]{60,70})\b",
                &["atlasv1"],
            ),
            1,
            Some(3.5),
        ),
        grouped(
            rule(
                "pulumi-api-token",
                "Pulumi API token",
                r"\b(pul-[a-f0-9]{40})\b",
                &["pul-"],
            ),
            1,
            Some(2.0),
        ),
        grouped(
            rule(
                "doppler-api-token",
                "Doppler API token",
                r"\b(dp\.pt\.[a-z0-9]{43})\b",
                &["dp.pt."],
            ),
            1,
            Some(2.0),
        ),
        grouped(
            rule(
                "grafana-token",
                "Grafana API key, cloud or service account token",
                r"\b(glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})\b",
                &["glc_", "glsa_"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "new-relic-user-api-key",
                "New Relic user API key",
                r"\b(NRAK-[a-z0-9]{27})\b",
                &["nrak"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "sentry-token",
                "Sentry auth token",
                r"\b(sntry[su]_[a-zA-Z0-9+/=_]{40,200})\b",
                &["sntrys_", "sntryu_"],
            ),
            1,
            Some(3.0),
        ),
        assigned(
            "datadog-api-key",
            "Datadog API or application key",
            r"datadog|dd_?api_?key|dd_?app_?key",
            r"[a-f0-9]{32,40}",
            &["datadog", "dd_api", "dd_app", "ddapi", "ddapp"],
            3.0,
        ),
        grouped(
            rule(
                "postman-api-token",
                "Postman API token",
                r"\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b",
                &["pmak-"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "linear-api-key",
                "Linear API key",
                r"\b(lin_api_[a-zA-Z0-9]{40})\b",
                &["lin_api_"],
            ),
            1,
            Some(2.0),
        ),
        grouped(
            rule(
                "atlassian-api-token",
                "Atlassian API token",
                r"\b(ATATT3[A-Za-z0-9_\-=]{186})\b",
                &["atatt3"],
            ),
            1,
            Some(3.5),
        ),
        grouped(
            rule(
                "age-secret-key",
                "age secret key",
                r"(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})",
                &["age-secret-key-1"],
            ),
            1,
            None,
        ),
        grouped(
            rule(
                "1password-secret-key",
                "1Password secret key",
                r"\b(A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})\b",
                &["a3-"],
            ),
            1,
            Some(3.8),
        ),
        grouped(
            rule(
                "mapbox-secret-token",
                "Mapbox secret token",
                r"\b(sk\.eyJ[a-zA-Z0-9._-]{80,300})\b",
                &["sk.eyj"],
            ),
            1,
            None,
        ),
        // Keys and tokens by shape.
        rule(
            "private-key",
            "Private key",
            // The body may sit in string literals (`"…\n" "…"`), as in test
            // code that embeds keys.
            r#"(?s)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\sA-Za-z0-9+/=:.,()"'\\-]{64,}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"#,
            &["-----begin"],
        ),
        grouped(
            rule(
                "jwt",
                "JSON Web Token",
                r"\b(ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9/\\_-]{17,}\.(?:[a-zA-Z0-9/\\_-]{10,}={0,2})?)(?:['|\x60\x22\s;,]|\\[nr]|$)",
                &["eyj"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "basic-auth-url",
                "Credentials in a URL",
                r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:@/'\x60]{1,100}:([^\s:@/'\x60]{3,100})@[a-z0-9.-]{2,}",
                &["://"],
            ),
            1,
            Some(3.0),
        ),
        grouped(
            rule(
                "kubernetes-secret-yaml",
                "Kubernetes Secret with data",
                r"(?s)kind:\s*['\x22]?Secret['\x22]?.{0,400}?\ndata:\s*\n\s+[\w.-]+:\s*['\x22]?([A-Za-z0-9+/]{16,}={0,2})",
                &["secret"],
            ),
            1,
            Some(3.0),
        ),
    ];
    // Generic credentials in assignments, kept last: specific rules win.
    let mut generic = assigned(
        "generic-api-key",
        "Generic API key or secret in an assignment",
        r"access|auth|(?-i:[Aa]pi|API)|credential|creds|key|passw(?:or)?d|secret|token",
        r"[\w.=-]{10,150}|[a-z0-9][a-z0-9+/]{11,}={0,3}",
        &[
            "access",
            "api",
            "auth",
            "key",
            "credential",
            "creds",
            "passwd",
            "password",
            "secret",
            "token",
        ],
        3.5,
    );
    generic.allowlists.push(Allowlist {
        description: "common placeholders and non-secrets".into(),
        target: Target::Secret,
        regexes: vec![
            Regex::new(r"(?i)^(?:true|false|null|none|nil|undefined|example|changeme|placeholder|redacted|xxx+|\*+|\$\{.*\}|\$\(.*\)|\{\{.*\}\}|<[^>]*>)$").ok(),
            // References to variables and files, not values.
            Regex::new(r"^(?:[A-Z_][A-Z0-9_]*|\w+\.\w+(?:\.\w+)*)$").ok(),
            // Generated credentials mix letters and digits; code identifiers
            // (`previousKeyPath`, `tokenizer_state`) have no digit.
            Regex::new(r"^[^0-9]+$").ok(),
            // …or are only digits and separators (ids, versions, dates).
            Regex::new(r"^[0-9._:-]+$").ok(),
            // File names (`rsa-2048-private-key.pem`).
            Regex::new(r"\.(?:pem|pk8|der|crt|key|pub|json|ya?ml|toml|txt|py|rs|js|ts)$").ok(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        stopwords: ["example", "sample", "dummy", "test", "fake", "foobar", "your_", "xxxx", "placeholder", "changeme", "secretsmanager", "process.env"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        identifiers: true,
        ..Allowlist::default()
    });
    // Version fields are not credentials (`apiVersion: autoscaling/v2`,
    // `api_version = "2024-01-01"`).
    generic.allowlists.push(Allowlist {
        description: "API version fields".into(),
        target: Target::Match,
        regexes: Regex::new(r"(?i)\bapi[_-]?version\b")
            .ok()
            .into_iter()
            .collect(),
        ..Allowlist::default()
    });
    rules.push(generic);
    // AWS's documented example credentials (`AKIAIOSFODNN7EXAMPLE`,
    // `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`) fill docs and tests.
    let example = Allowlist {
        description: "AWS's documented example keys".into(),
        target: Target::Secret,
        regexes: Regex::new(r"EXAMPLE(?:KEY)?$").ok().into_iter().collect(),
        ..Allowlist::default()
    };
    for r in rules.iter_mut().filter(|r| r.id.starts_with("aws-")) {
        r.allowlists.push(example.clone());
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_rule_compiles_and_has_a_unique_id() {
        let rules = defaults();
        let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        for r in &rules {
            assert!(r.regex.is_some(), "{} does not compile", r.id);
            assert!(!r.keywords.is_empty(), "{} has no keywords", r.id);
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n >= 60, "{n} rules");
        let mut sorted = WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, WORDS, "WORDS is searched by bisection");
    }

    #[test]
    fn api_versions_are_not_keys() {
        let engine = crate::secrets::Engine::new(defaults(), vec![]);
        for line in [
            "\"apiVersion\": \"autoscaling/v2\",",
            "apiVersion: networking.k8s.io/v1beta1",
            "api_version = \"2024-06-01x7\"",
        ] {
            let found = engine.scan("k.yaml", line.as_bytes(), None, None);
            assert!(found.is_empty(), "{line}: {found:?}");
        }
        let found = engine.scan(
            "k.env",
            b"api_key = \"q3F9v2Lk8PzR7mXw4TbN6yHc1JdS5gUe\"",
            None,
            None,
        );
        assert_eq!(found.len(), 1, "a real key is still found");
    }

    #[test]
    fn identifiers_versus_tokens() {
        for id in [
            "X509PrivateKeyProtection",
            "nl80211_key_attributes",
            "_prevKeyPath4",
            "previousKeyPath",
            "dot11_key_direction_both",
            "maxRetryCount",
        ] {
            assert!(looks_like_identifier(id.as_bytes()), "{id}");
        }
        for token in [
            "VqmCplppjs46LmuezqpGHoPZgPDcgaE4",
            "n3bK8Lq0vXw7Tz2Rp9YdHs4M",
            "q3F9v2Lk8PzR7mXw4TbN6yHc1JdS5gUe0aVoKi7E",
        ] {
            assert!(!looks_like_identifier(token.as_bytes()), "{token}");
        }
    }
}
