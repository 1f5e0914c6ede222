/* The built-in language profiles (languages/default.json), embedded in the
 * library so the binary needs no data files at run time. */
        .section .rodata
        .global al_languages_default_json
        .type al_languages_default_json, @object
        .balign 16
al_languages_default_json:
        .incbin "languages/default.json"
        .byte 0
        .size al_languages_default_json, . - al_languages_default_json
        .section .note.GNU-stack,"",@progbits
