"""The handlers of the three Lambda functions in template.yaml; each builds itself during init."""
