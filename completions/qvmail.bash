# bash completion for the qvmail commands. Each command completes itself through its hidden
# "__complete" mode, so these completions always match the command's --help.
_qvmail_complete() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _qvmail_complete qmailctl vadddomain vdeldomain vdominfo vmoddomain \
    vadduser vdeluser vpasswd vuserinfo vmoduser clearopensmtp vchkpass vcfilter valias vsetuserquota vaddaliasdomain vrenameuser vrenamedomain vdeloldusers vlimit

# The MTA programs take qmail's arguments, not options: qmail-smtpd a host name, then a checkpassword
# program and its arguments (file names); the others none.
_qvmail_mta_complete() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        if [ "${COMP_WORDS[0]##*/}" = qmail-smtpd ]; then
            COMPREPLY=($(compgen -A hostname -W "--help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
        fi
    fi
}
complete -o default -F _qvmail_mta_complete qmail-smtpd
complete -F _qvmail_mta_complete qmail-queue qmail-queued qmail-nullqueue qmail-send qmail-remote vdelivermail vfilter
