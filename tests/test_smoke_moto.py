import boto3


def test_moto_server_serves_s3(aws_env):
    s3 = boto3.client("s3", endpoint_url=aws_env)
    s3.create_bucket(Bucket="smoke")
    s3.put_object(Bucket="smoke", Key="a/b.txt", Body=b"hi")
    from blocks_pipelines.lake import fs

    assert [o.uri for o in fs.list_objects("s3://smoke/a")] == ["s3://smoke/a/b.txt"]
    assert fs.read_bytes("s3://smoke/a/b.txt") == b"hi"
