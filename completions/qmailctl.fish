# fish completion for qmailctl; the command completes itself ("__complete" mode).
complete -c qmailctl -f -a '(qmailctl __complete -- (commandline -opc)[2..-1] (commandline -ct))'
