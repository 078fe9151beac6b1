# fish completion for the qvmail commands; each command completes itself ("__complete" mode).
for cmd in qmailctl vadddomain vdeldomain vdominfo vmoddomain vadduser vdeluser vpasswd vuserinfo vmoduser clearopensmtp vchkpass vcfilter
    complete -c $cmd -f -a "($cmd __complete -- (commandline -opc)[2..-1] (commandline -ct))"
end
