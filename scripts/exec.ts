// placeholder: replaced by the exec command
console.error("exec: not built yet");
process.exitCode = 1;
