"""Seeds a moto server with compliant and non-compliant AWS resources for the collector test.

Reads AWS_ENDPOINT_URL (the moto server) and prints, as one JSON document on stdout, the
misconfigurations it seeded: [{"rule": <built-in rule id>, "resource": <text in the resource id>}].
The Rust test (tests/aws_moto.rs) collects the account and checks that the built-in rules find
every one of them.
"""

import json
import os

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
expected = []


def expect(rule, resource):
    expected.append({"rule": rule, "resource": resource})


def client(service, region="us-east-1"):
    return boto3.client(service, region_name=region, endpoint_url=ENDPOINT)


# --- S3 -----------------------------------------------------------------------------------
s3 = client("s3")
s3.create_bucket(Bucket="palisade-logs", ACL="log-delivery-write")

s3.create_bucket(Bucket="palisade-good")
s3.put_public_access_block(
    Bucket="palisade-good",
    PublicAccessBlockConfiguration={
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    },
)
s3.put_bucket_versioning(Bucket="palisade-good", VersioningConfiguration={"Status": "Enabled"})
s3.put_bucket_encryption(
    Bucket="palisade-good",
    ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]
    },
)
s3.put_bucket_logging(
    Bucket="palisade-good",
    BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "palisade-logs", "TargetPrefix": "good/"}},
)
s3.put_bucket_policy(
    Bucket="palisade-good",
    Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::palisade-good", "arn:aws:s3:::palisade-good/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }),
)

s3.create_bucket(Bucket="palisade-bad")
s3.put_bucket_acl(Bucket="palisade-bad", ACL="public-read")
s3.put_bucket_policy(
    Bucket="palisade-bad",
    Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": "arn:aws:s3:::palisade-bad/*"}],
    }),
)
for rule in ["aws-s3-block-public-acls", "aws-s3-block-public-policy", "aws-s3-not-public",
             "aws-s3-versioning", "aws-s3-kms-encryption", "aws-s3-access-logging",
             "aws-s3-deny-http", "aws-s3-object-read-logging"]:
    expect(rule, "palisade-bad")

# --- IAM ----------------------------------------------------------------------------------
iam = client("iam")
iam.update_account_password_policy(
    MinimumPasswordLength=8, RequireSymbols=False, RequireNumbers=True,
    RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
    AllowUsersToChangePassword=True, MaxPasswordAge=365, PasswordReusePrevention=2,
)
for rule in ["aws-iam-password-min-length", "aws-iam-password-symbols",
             "aws-iam-password-max-age", "aws-iam-password-reuse"]:
    expect(rule, ":root")

iam.create_group(GroupName="developers")
iam.create_user(UserName="alice")
iam.add_user_to_group(GroupName="developers", UserName="alice")
iam.create_login_profile(UserName="alice", Password="correct-horse-battery-1!")
device = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")
iam.enable_mfa_device(UserName="alice", SerialNumber=device["VirtualMFADevice"]["SerialNumber"],
                      AuthenticationCode1="123456", AuthenticationCode2="654321")
iam.create_access_key(UserName="alice")

iam.create_user(UserName="bob")
iam.create_login_profile(UserName="bob", Password="password-without-mfa-1!")
iam.create_access_key(UserName="bob")
iam.create_access_key(UserName="bob")
admin = iam.create_policy(
    PolicyName="palisade-full-admin",
    PolicyDocument=json.dumps({"Version": "2012-10-17",
                               "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
)
iam.attach_user_policy(UserName="bob", PolicyArn=admin["Policy"]["Arn"])
iam.put_user_policy(UserName="bob", PolicyName="inline",
                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
for rule in ["aws-iam-user-mfa", "aws-iam-user-no-direct-policies", "aws-iam-user-one-active-key"]:
    expect(rule, "user/bob")
expect("aws-iam-no-full-admin-policies", "policy/palisade-full-admin")

iam.create_role(RoleName="ops", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}))

# --- EC2, EBS, VPC (two regions) ----------------------------------------------------------
ec2 = client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
ssh = ec2.create_security_group(GroupName="palisade-open-ssh", Description="ssh from anywhere", VpcId=vpc)
ec2.authorize_security_group_ingress(GroupId=ssh["GroupId"], IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
     "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
expect("aws-ec2-sg-no-ssh-from-internet", ssh["GroupId"])
expect("aws-ec2-sg-no-ssh-from-internet-ipv6", ssh["GroupId"])
web = ec2.create_security_group(GroupName="palisade-web", Description="https", VpcId=vpc)
ec2.authorize_security_group_ingress(GroupId=web["GroupId"], IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
everything = ec2.create_security_group(GroupName="palisade-all", Description="all", VpcId=vpc)
ec2.authorize_security_group_ingress(GroupId=everything["GroupId"], IpPermissions=[
    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
expect("aws-ec2-sg-no-all-traffic-from-internet", everything["GroupId"])

subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.1.0/24")["Subnet"]["SubnetId"]
images = ec2.describe_images(Owners=["amazon"])["Images"]
image = images[0]["ImageId"]
weak = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                         SubnetId=subnet, MetadataOptions={"HttpTokens": "optional"})
weak_id = weak["Instances"][0]["InstanceId"]
expect("aws-ec2-imdsv2", weak_id)
expect("aws-ec2-instance-role", weak_id)
expect("aws-ec2-detailed-monitoring", weak_id)

ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, Encrypted=True,
                  TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "good"}]}])
bad_volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, Encrypted=False)["VolumeId"]
expect("aws-ebs-volume-encrypted", bad_volume)
expect("aws-ebs-volume-in-use", bad_volume)
expect("aws-vpc-flow-logs", vpc)
expect("aws-ebs-default-encryption", "us-east-1:123456789012:account-settings")

logged_vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
ec2.create_flow_logs(ResourceIds=[logged_vpc], ResourceType="VPC", TrafficType="ALL",
                     LogDestinationType="s3", LogDestination="arn:aws:s3:::palisade-logs")

ec2_eu = client("ec2", "eu-west-1")
eu_vpc = ec2_eu.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
rdp = ec2_eu.create_security_group(GroupName="palisade-open-rdp", Description="rdp", VpcId=eu_vpc)
ec2_eu.authorize_security_group_ingress(GroupId=rdp["GroupId"], IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
expect("aws-ec2-sg-no-rdp-from-internet", rdp["GroupId"])

# --- CloudTrail ---------------------------------------------------------------------------
kms = client("kms")
trail_key = kms.create_key(Description="trail key")["KeyMetadata"]["Arn"]
cloudtrail = client("cloudtrail")
cloudtrail.create_trail(Name="palisade-good-trail", S3BucketName="palisade-logs", IsMultiRegionTrail=True,
                        EnableLogFileValidation=True, KmsKeyId=trail_key,
                        CloudWatchLogsLogGroupArn="arn:aws:logs:us-east-1:123456789012:log-group:trail:*",
                        CloudWatchLogsRoleArn="arn:aws:iam::123456789012:role/ops")
cloudtrail.start_logging(Name="palisade-good-trail")
cloudtrail.put_event_selectors(TrailName="palisade-good-trail", EventSelectors=[
    {"ReadWriteType": "All", "IncludeManagementEvents": True,
     "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::palisade-good/"]}]}])
cloudtrail.create_trail(Name="palisade-bad-trail", S3BucketName="palisade-bad")
for rule in ["aws-cloudtrail-multi-region", "aws-cloudtrail-log-validation", "aws-cloudtrail-kms",
             "aws-cloudtrail-cloudwatch", "aws-cloudtrail-logging", "aws-cloudtrail-bucket-logging"]:
    expect(rule, "trail/palisade-bad-trail")

# --- KMS ----------------------------------------------------------------------------------
rotated = kms.create_key(Description="rotated")["KeyMetadata"]["KeyId"]
kms.enable_key_rotation(KeyId=rotated)
unrotated = kms.create_key(Description="not rotated")["KeyMetadata"]["KeyId"]
expect("aws-kms-rotation", unrotated)
public = kms.create_key(Description="public", Policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Sid": "everyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
}))["KeyMetadata"]["KeyId"]
expect("aws-kms-no-public-policy", public)
doomed = kms.create_key(Description="doomed")["KeyMetadata"]["KeyId"]
kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
expect("aws-kms-not-pending-deletion", doomed)

# --- RDS ----------------------------------------------------------------------------------
rds = client("rds")
rds.create_db_instance(DBInstanceIdentifier="palisade-orders", DBInstanceClass="db.t3.micro", Engine="postgres",
                       MasterUsername="admin", MasterUserPassword="not-a-real-password", AllocatedStorage=20,
                       StorageEncrypted=False, PubliclyAccessible=True, BackupRetentionPeriod=1,
                       MultiAZ=False, DeletionProtection=False)
for rule in ["aws-rds-encrypted", "aws-rds-not-public", "aws-rds-backup-retention",
             "aws-rds-multi-az", "aws-rds-deletion-protection"]:
    expect(rule, "db:palisade-orders")
rds.create_db_instance(DBInstanceIdentifier="palisade-ledger", DBInstanceClass="db.t3.micro", Engine="postgres",
                       MasterUsername="admin", MasterUserPassword="not-a-real-password", AllocatedStorage=20,
                       StorageEncrypted=True, PubliclyAccessible=False, BackupRetentionPeriod=14,
                       MultiAZ=True, DeletionProtection=True, EnableIAMDatabaseAuthentication=True,
                       AutoMinorVersionUpgrade=True)

print(json.dumps(expected))
