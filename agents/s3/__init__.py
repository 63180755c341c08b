"""The S3 front door: dcloud storage for the aws CLI, boto3 and every S3 client.

``dcloud s3 serve`` runs on the renter's machine, so the keys that encrypt the data never
leave it. Requests are checked with AWS Signature Version 4 against access keys the renter
makes (``dcloud s3 keys``), scoped to buckets; objects are stored through the renter's
storage client (encrypted, erasure-coded, spread over nodes) and described in a small
index beside it.

Modules: ``server`` (HTTP, addressing), ``routes`` (which operation; S3's XML out),
``wire`` (headers in and out), ``sigv4`` (signatures, with botocore's signer),
``body`` (streamed bodies, ``aws-chunked``), ``checksums``, ``conditions``,
``documents`` (XML), ``service`` (buckets, objects), ``multipart``, ``listing``,
``index`` (SQLite records), ``blobs`` (the storage client), ``keys``, ``app``, ``cli``.
"""
