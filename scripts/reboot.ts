// placeholder: replaced by the reboot command
console.error("reboot: not built yet");
process.exitCode = 1;
