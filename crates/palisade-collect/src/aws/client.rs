//! Signed calls to AWS in the three protocols the collected services speak: query (IAM, STS,
//! EC2, RDS: form POST, XML answer), JSON 1.1 (CloudTrail, KMS: `X-Amz-Target`), and REST-XML
//! (S3). Requests are signed with SigV4 by `aws-sigv4` (the signer of the official SDK).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::config::AwsConfig;
use super::xml::XmlNode;

/// Characters AWS wants percent-encoded: everything but `A-Z a-z 0-9 - _ . ~`.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes one query or form component the way SigV4 canonicalises it.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, AWS_ENCODE).to_string()
}

/// A failed call: AWS's error code and message, or a transport problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status (0 when the request did not get an answer).
    pub status: u16,
    /// AWS's error code (`AccessDenied`, `NoSuchBucketPolicy`), or `Transport` / `BadResponse`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// True when AWS says the thing asked about does not exist or is not configured
    /// (`NoSuchBucketPolicy`, `NoSuchEntity`, `ServerSideEncryptionConfigurationNotFoundError`):
    /// an answer, not a failure.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
            || self.code.starts_with("NoSuch")
            || self.code.ends_with("NotFoundError")
            || self.code.ends_with("NotFoundException")
            || self.code == "NotFound"
    }
}

/// An HTTP client that signs for one set of credentials.
#[derive(Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    config: AwsConfig,
}

impl AwsClient {
    /// Creates the client (rustls with ring, as the rest of the binary).
    pub fn new(config: AwsConfig) -> Result<Self, ApiError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("palisade-collect/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| ApiError::new(0, "Transport", error.to_string()))?;
        Ok(Self { http, config })
    }

    /// The configuration the client was made with.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// The base URL of a service in a region.
    fn endpoint(&self, service: &str, region: &str) -> String {
        if let Some(url) = &self.config.endpoint_url {
            return url.clone();
        }
        match service {
            "iam" => "https://iam.amazonaws.com".to_owned(),
            _ => format!("https://{service}.{region}.amazonaws.com"),
        }
    }

    /// Signs and sends one request; returns the body of a 2xx answer.
    async fn send(
        &self,
        method: &str,
        url: &str,
        service: &str,
        region: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<(u16, String), ApiError> {
        let identity = Credentials::new(
            &self.config.credentials.access_key_id,
            &self.config.credentials.secret_access_key,
            self.config.credentials.session_token.clone(),
            None,
            "palisade",
        )
        .into();
        let mut settings = SigningSettings::default();
        if service == "s3" {
            // S3 wants the payload hash as a header of its own.
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|error| ApiError::new(0, "Signing", error.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|error| ApiError::new(0, "Signing", error.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| ApiError::new(0, "Signing", error.to_string()))?
            .into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|error| ApiError::new(0, "Signing", error.to_string()))?;
        let mut request = self.http.request(method, url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| ApiError::new(0, "Transport", error.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| ApiError::new(status, "Transport", error.to_string()))?;
        if (200..300).contains(&status) {
            return Ok((status, text));
        }
        Err(error_of(status, &text))
    }

    /// A query-protocol call (`Action`, `Version`, parameters); returns the XML answer.
    pub async fn query(
        &self,
        service: &str,
        region: &str,
        version: &str,
        action: &str,
        parameters: &[(String, String)],
    ) -> Result<XmlNode, ApiError> {
        let mut body = format!("Action={}&Version={}", encode(action), encode(version));
        for (name, value) in parameters {
            body.push('&');
            body.push_str(&encode(name));
            body.push('=');
            body.push_str(&encode(value));
        }
        let url = format!("{}/", self.endpoint(service, region));
        let headers = vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        )];
        let (status, text) = self
            .send("POST", &url, service, region, headers, body.into_bytes())
            .await?;
        XmlNode::parse(&text).map_err(|message| ApiError::new(status, "BadResponse", message))
    }

    /// A JSON 1.1 call (`X-Amz-Target: <prefix>.<operation>`); returns the JSON answer.
    pub async fn json(
        &self,
        service: &str,
        region: &str,
        target: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/", self.endpoint(service, region));
        let headers = vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("x-amz-target".to_owned(), target.to_owned()),
        ];
        let (status, text) = self
            .send(
                "POST",
                &url,
                service,
                region,
                headers,
                body.to_string().into_bytes(),
            )
            .await?;
        if text.trim().is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&text)
            .map_err(|error| ApiError::new(status, "BadResponse", error.to_string()))
    }

    /// An S3 GET of a bucket sub-resource (`?acl`, `?policy`) or of the service (`bucket` =
    /// `None`); returns the raw body. Path-style addressing at a custom endpoint and for
    /// bucket names with dots, virtual-hosted addressing on AWS otherwise.
    pub async fn s3_get(
        &self,
        region: &str,
        bucket: Option<&str>,
        query: &str,
    ) -> Result<String, ApiError> {
        let base = match (&self.config.endpoint_url, bucket) {
            (Some(url), Some(bucket)) => format!("{url}/{}", encode(bucket)),
            (Some(url), None) => url.clone(),
            (None, Some(bucket)) if bucket.contains('.') => {
                format!("https://s3.{region}.amazonaws.com/{bucket}")
            }
            (None, Some(bucket)) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, None) => format!("https://s3.{region}.amazonaws.com"),
        };
        let url = if query.is_empty() {
            format!("{base}/")
        } else {
            format!("{base}/?{query}")
        };
        let (_, text) = self
            .send("GET", &url, "s3", region, Vec::new(), Vec::new())
            .await?;
        Ok(text)
    }
}

/// Reads AWS's error body in any of its shapes: query `<ErrorResponse><Error>`, EC2
/// `<Response><Errors><Error>`, S3 `<Error>`, JSON `{"__type", "message"}`.
fn error_of(status: u16, text: &str) -> ApiError {
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        let code = json
            .get("__type")
            .or_else(|| json.get("code"))
            .and_then(Value::as_str)
            .map(|code| code.rsplit('#').next().unwrap_or(code).to_owned())
            .unwrap_or_else(|| format!("Http{status}"));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        return ApiError::new(status, &code, message);
    }
    if let Ok(node) = XmlNode::parse(text) {
        let error = if node.name == "Error" {
            Some(&node)
        } else {
            node.at(&["Error"])
                .or_else(|| node.at(&["Errors", "Error"]))
        };
        if let Some(error) = error {
            return ApiError::new(
                status,
                &error
                    .text_at(&["Code"])
                    .unwrap_or_else(|| format!("Http{status}")),
                error.text_at(&["Message"]).unwrap_or_default(),
            );
        }
    }
    // Proxies and emulators answer with HTML or text: keep one short line of it.
    let snippet = match (text.find("<title>"), text.find("</title>")) {
        (Some(start), Some(end)) if start + 7 <= end => text[start + 7..end].to_owned(),
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let snippet: String = snippet.chars().take(200).collect();
    ApiError::new(status, &format!("Http{status}"), snippet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_protocol_are_read() {
        let query = error_of(
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
        );
        assert_eq!(
            (query.code.as_str(), query.message.as_str()),
            ("AccessDenied", "no")
        );
        let ec2 = error_of(
            400,
            "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>m</Message></Error></Errors></Response>",
        );
        assert_eq!(ec2.code, "UnauthorizedOperation");
        let s3 = error_of(404, "<Error><Code>NoSuchBucketPolicy</Code></Error>");
        assert!(s3.is_not_found());
        let json = error_of(
            400,
            r#"{"__type":"com.amazonaws.kms#NotFoundException","message":"x"}"#,
        );
        assert_eq!(json.code, "NotFoundException");
        assert_eq!(error_of(500, "oops").code, "Http500");
    }

    #[test]
    fn encoding_keeps_unreserved_characters() {
        assert_eq!(encode("a b/c~d-e_f.g"), "a%20b%2Fc~d-e_f.g");
    }
}
