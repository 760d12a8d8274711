"""The stakeholders' final report: the protocol, the locked-until-unlocked result, charts and downloads."""
