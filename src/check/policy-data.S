/* The built-in default policy of static validation (policies/default.json),
 * embedded in the library. */
        .section .rodata
        .global al_policy_default_json
        .type al_policy_default_json, @object
        .balign 16
al_policy_default_json:
        .incbin "policies/default.json"
        .byte 0
        .size al_policy_default_json, . - al_policy_default_json
        .section .note.GNU-stack,"",@progbits
