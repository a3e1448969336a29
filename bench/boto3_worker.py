"""The prototype's design, corrected, as a yardstick for `make bench`: boto3
and a ThreadPoolExecutor(4). Receive up to 10 requests, run the handler for
each on the pool (body on stdin), send a completion, delete the request;
exit when a receive returns nothing.

Environment: REQUEST_QUEUE_URL, COMPLETION_QUEUE_URL, AWS_ENDPOINT_URL,
AWS_REGION and credentials; the handler's argv follows on the command line.
Prints `summary: succeeded=N cpu=Ss peak_rss=KKiB` on stderr (its own CPU and
peak RSS, not its handlers').
"""

import json
import os
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

sqs = boto3.client(
    "sqs",
    endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
)
REQUESTS = os.environ["REQUEST_QUEUE_URL"]
COMPLETIONS = os.environ["COMPLETION_QUEUE_URL"]
HANDLER = sys.argv[1:]
WAIT = int(os.environ.get("WAIT_TIME_SECONDS", "0"))


def handle(message):
    done = subprocess.run(HANDLER, input=message["Body"].encode(), capture_output=True)
    if done.returncode != 0:
        return 0
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    completion = {"success": True, "request_message_id": message["MessageId"], "result": result}
    sqs.send_message(QueueUrl=COMPLETIONS, MessageBody=json.dumps(completion))
    sqs.delete_message(QueueUrl=REQUESTS, ReceiptHandle=message["ReceiptHandle"])
    return 1


def main():
    succeeded = 0
    with ThreadPoolExecutor(int(os.environ.get("WORKERS", "4"))) as pool:
        while True:
            answer = sqs.receive_message(
                QueueUrl=REQUESTS, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT, VisibilityTimeout=120
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            succeeded += sum(pool.map(handle, messages))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"summary: succeeded={succeeded} cpu={usage.ru_utime + usage.ru_stime:.3f}s peak_rss={usage.ru_maxrss}KiB",
        file=sys.stderr,
    )


main()
