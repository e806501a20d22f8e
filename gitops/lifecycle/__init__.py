"""The run lifecycle: submit; on the job event register -> deploy at 0% -> smoke-test -> promote or roll back."""
