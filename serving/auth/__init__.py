"""Bearer JWT authentication: Cognito in production, a local RS256 issuer in development."""
