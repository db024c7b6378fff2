"""Bulk jobs' executions: one Step Functions execution of the bulk state machine per job (docs/bulk.md).

An execution is named after its job and its input is `{"job_id"}`: the job id is the only thing of a job that
Step Functions (its history, the console, the state machine's logs) ever holds, besides one chunk's ids in a
child execution's input (and the state machine logs no execution data).
"""

from __future__ import annotations

import json
from typing import Any

ENDED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})  # ended without the state machine saying how


class Executions:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self.sfn = sfn
        self.state_machine_arn = state_machine_arn

    def start(self, job_id: str) -> str:
        """Start the job's execution, named after the job (a second start of the same job is refused by AWS)."""
        started = self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=job_id, input=json.dumps({"job_id": job_id}))
        return started["executionArn"]

    def ended_unfinished(self, execution_arn: str) -> bool:
        """Whether the execution has ended without finishing its job (failed, timed out, aborted)."""
        return self.sfn.describe_execution(executionArn=execution_arn)["status"] in ENDED
