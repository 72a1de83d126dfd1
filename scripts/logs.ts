// placeholder: replaced by the logs command
console.error("logs: not built yet");
process.exitCode = 1;
