/* The session drivers (languages/sessions/), embedded in the library:
 * one NUL-terminated text each, looked up by file name (profile.c). */
        .section .rodata
        .macro driver sym, file
        .global \sym
        .type \sym, @object
        .balign 16
\sym:
        .incbin "\file"
        .byte 0
        .size \sym, . - \sym
        .endm
        driver al_driver_python, "languages/sessions/python.py"
        driver al_driver_node, "languages/sessions/node.js"
        driver al_driver_bash, "languages/sessions/bash.sh"
        /* a run with an allowlist: node through its proxy (egress) */
        driver al_net_node_proxy, "languages/net/node-proxy.js"
        .section .note.GNU-stack,"",@progbits
