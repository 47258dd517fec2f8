//! Name conversions shared by the collectors: AWS API member names to the snake_case of the AWS
//! SDK models (the collector contract's layout), and CamelCase type names to kebab-case kinds.

/// Converts `DBInstanceIdentifier` / `ipv6Ranges` / `S3BucketName` to `db_instance_identifier`
/// / `ipv6_ranges` / `s3_bucket_name`, as the AWS SDKs name model members: a word starts at an
/// upper-case letter after a lower-case letter or digit, and at the last capital of an acronym
/// followed by a lower-case letter.
pub fn snake_case(name: &str) -> String {
    split_words(name, '_')
}

/// Converts `ServiceAccountKey` to `service-account-key`.
pub(crate) fn kebab_case(name: &str) -> String {
    split_words(name, '-')
}

fn split_words(name: &str, separator: char) -> String {
    let characters: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &character) in characters.iter().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            let previous = characters[index - 1];
            let next_is_lower = characters
                .get(index + 1)
                .is_some_and(|next| next.is_ascii_lowercase());
            let boundary = previous.is_ascii_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_ascii_uppercase() && next_is_lower);
            if boundary && !out.ends_with(separator) {
                out.push(separator);
            }
        }
        if character == '-' || character == '_' || character == ' ' {
            if !out.ends_with(separator) {
                out.push(separator);
            }
            continue;
        }
        out.push(character.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_member_names_become_sdk_snake_case() {
        for (name, expected) in [
            ("DBInstanceIdentifier", "db_instance_identifier"),
            ("MultiAZ", "multi_az"),
            (
                "IAMDatabaseAuthenticationEnabled",
                "iam_database_authentication_enabled",
            ),
            ("ipv6Ranges", "ipv6_ranges"),
            ("cidrIpv6", "cidr_ipv6"),
            ("S3BucketName", "s3_bucket_name"),
            (
                "CloudWatchLogsLogGroupArn",
                "cloud_watch_logs_log_group_arn",
            ),
            ("groupId", "group_id"),
            ("KeyId", "key_id"),
            ("already_snake", "already_snake"),
        ] {
            assert_eq!(snake_case(name), expected, "{name}");
        }
    }

    #[test]
    fn type_names_become_kebab_case() {
        assert_eq!(kebab_case("ServiceAccountKey"), "service-account-key");
        assert_eq!(kebab_case("Bucket"), "bucket");
        assert_eq!(kebab_case("SslCertificate"), "ssl-certificate");
    }
}
