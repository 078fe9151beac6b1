# fish completion for the qvmail commands; each command completes itself ("__complete" mode).
for cmd in qmailctl vadddomain vdeldomain vdominfo vmoddomain vadduser vdeluser vpasswd vuserinfo vmoduser clearopensmtp vchkpass vcfilter valias vsetuserquota vaddaliasdomain vrenameuser vrenamedomain vdeloldusers vlimit
    complete -c $cmd -f -a "($cmd __complete -- (commandline -opc)[2..-1] (commandline -ct))"
end
# The MTA programs take qmail's arguments: qmail-smtpd a host name, then a checkpassword program and its
# arguments; the others nothing but --help and --version.
for cmd in qmail-smtpd qmail-queue qmail-queued qmail-nullqueue qmail-send qmail-remote vdelivermail vfilter
    complete -c $cmd -l help -d 'Print the usage and exit'
    complete -c $cmd -l version -d 'Print the version and exit'
end
complete -c qmail-smtpd -n '__fish_is_nth_token 1' -f -a '(__fish_print_hostnames)'
