package main

import "strings"

// Signal names reported in InjectionVerdict.Signals. They are part of the
// output contract of `production-agent scan` and of the audit trail.
const (
	injSigOverride   = "instruction_override"
	injSigNewTask    = "new_task"
	injSigPersona    = "persona_jailbreak"
	injSigExtraction = "prompt_extraction"
	injSigTemplate   = "template_marker"
	injSigExfil      = "markdown_exfiltration"
	injSigInvisible  = "invisible_characters"
	injSigEncoded    = "encoded_payload"
	injSigHomoglyph  = "homoglyphs"
)

// injSignalOrder fixes the order of InjectionVerdict.Signals.
func injSignalOrder() []string {
	return []string{injSigOverride, injSigNewTask, injSigPersona, injSigExtraction,
		injSigTemplate, injSigExfil, injSigInvisible, injSigEncoded, injSigHomoglyph}
}

// injRuleSpec is one matching rule over the token view built by normalize:
// lower-case tokens separated by single spaces, "." for sentence ends,
// umlauts spelled ae/oe/ue/ss and apostrophes removed ("dont").
//
// A pattern matches from the start of a token. The detector derives from each
// pattern the first two tokens it can begin with (see injHeads) and runs the
// regular expression only where the text has such a pair, so a pattern must
// begin with words, not with a wildcard. Rules of one group count once, with
// the weight of the strongest.
type injRuleSpec struct {
	signal  string
	group   string
	weight  float64
	pattern string
	// unless, when set, is a pattern tried at the same token; if it matches,
	// the rule does not fire ("you are now ready" is not a persona switch).
	unless string
	// lexicon marks a single-word rule of weight 0 that only counts towards
	// its group's vocabulary density (see injLexiconWeight).
	lexicon bool
}

// Word families the rules are built from. Each is a general class (verbs of
// overriding, qualifiers of earlier text, nouns for instructions), never a
// phrase taken from a data set.
const (
	injVerbOverride = `(?:ignore|ignoring|ignored|disregard|disregarding|forget|forgetting|neglect|neglecting|skip|drop|abandon|discard|dismiss|override|overwrite|overriding|bypass|erase|delete|wipe|scrap|cancel|nullify|remove|clear|reset|leave|do not follow|dont follow|do not obey|dont obey|stop following|no longer follow|set aside|put aside|pay no attention to|throw out|throw away)`

	// injQual marks text as the earlier or governing context.
	injQual = `(?:all|any|every|each|your|my|our|previous|previously|prior|preceding|above|earlier|former|foregoing|aforementioned|original|initial|old|existing|system|developer|default|given|provided|these|those|alle|saemtliche|deine|ihre|bisherigen|vorherigen|obigen)`
	// injFill are the function words that may sit between verb and object.
	injFill = `(?:the|of|about|and|a|an|that|this|you|were|have|been|got|received|so|far|just|now|please|simply|completely|entirely|totally|other|whatever)`

	injObjStrong = `(?:instructions?|prompts?|system prompt|prompt texts?|directions|directives?|guidelines|rules|orders|commands|programming|guidance|constraints|restrictions|training|conditioning|policies|safeguards|guardrails|filters|moderation|configuration)`
	injObjWeak   = `(?:information|info|tasks?|assignments?|context|contexts|documents?|articles?|texts?|messages|conversation|inputs?|thoughts|knowledge|content|data|sources|requests|answers|words|sentences)`

	// injBefore closes a reference to earlier text: "everything above".
	injBefore = `(?:above|before|previously|earlier|beforehand|so far|until now|up to now|prior|you know|you have learned|you learned|you were told|you have been told|youve been told|we discussed|we talked about|i said|i told you|you were given|that came before|that came earlier)`

	injVerbDE = `(?:ignoriere|ignorieren|ignoriert|ignorier|vergiss|vergesse|vergessen|vergesst|missachte|missachten|verwirf|verwerfe|verwerfen|uebergehe|uebergehen|loesche|loeschen|streiche|streichen|vernachlaessige|vernachlaessigen)`
	injFillDE = `(?:alle|alles|saemtliche|die|der|den|das|deine|dein|ihre|eure|meine|bisherigen|bisherige|vorherigen|vorherige|vorangegangenen|vorangehenden|obigen|obige|oben|genannten|vorigen|frueheren|gegebenen|erhaltenen|sie|du|bitte|einfach|nun|jetzt|mal|zuvor|vorher|davor|gesagten|ueber)`
	injObjDE  = `(?:anweisungen|anweisung|instruktionen|befehle|regeln|vorgaben|richtlinien|prompts?|aufgaben|auftraege|informationen|angaben|ausfuehrungen|dokumente|artikel|kontext|eingaben|texte)`

	// injQualAdj are the adjectives of earlier text that can open a clause
	// ("all previous instructions are void", "die obigen Anweisungen ignorieren").
	injQualAdj = `(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|old|bisherigen|bisherige|vorherigen|vorherige|vorangegangenen|vorangehenden|obigen|obige|frueheren|vorigen|genannten)`

	injVerbRomance = `(?:olvida|olvide|olvidate|olvidad|olvidar|ignora|ignorad|ignorez|ignorer|oubliez|oublie|oublier|zaboravi|zaboravite|dimentica|dimenticate|ignorare|esqueca|esquece|zapomnij|забудь|забудьте|игнорируй|игнорируйте)`

	injShowVerb  = `(?:show|reveal|print|display|output|repeat|tell|give|list|share|write|dump|leak|expose|disclose|spell|copy|paste|provide|return|send|post|zeige|zeig|gib|nenne|verrate|wiederhole|schreibe|drucke|teile)`
	injPoss      = `(?:your|deine|deinen|dein|ihre|ihren|ihr|the full|the entire|the complete|the whole|the exact|the system|the initial|the original|the hidden|the secret|the above|den gesamten|den ganzen|den vollstaendigen|die gesamten|die vollstaendigen)`
	injPromptObj = `(?:prompt|prompts|prompt texts?|prompttexte?|system prompt|system message|system instructions?|instructions|instruction|initial prompt|rules|guidelines|directives|configuration|pre prompt|preprompt|hidden prompt|anweisungen|instruktionen|systemnachricht|systemprompt|regeln|vorgaben|context window|training data)`
	injPromptAdj = `(?:full|entire|complete|system|initial|original|hidden|secret|first|exact|whole|gesamten|ganzen|vollstaendigen|current|previous|above|internal|underlying|actual|real|all|alle|saemtliche)`

	// injConstraint names the limits a jailbreak claims to remove.
	injConstraint = `(?:restrictions?|limitations?|limits|rules|filters?|filtering|guidelines|censorship|censoring|constraints|boundaries|policies|policy|confines|ethics|morals|morality|principles|safeguards|guardrails|moral|ethical|programming|regulations|einschraenkungen|regeln|grenzen|zensur|richtlinien)`
)

// injRuleSpecs returns the rule table. It is called once per detector.
func injRuleSpecs() []injRuleSpec {
	specs := []injRuleSpec{
		// Instruction override: verb of overriding × filler × object of instructions.
		injR(injSigOverride, "override_object", 0.8,
			injVerbOverride+` (?:(?:`+injFill+`|`+injQual+`) ){0,4}`+injQual+` (?:(?:`+injFill+`|`+injQual+`) ){0,3}`+injObjStrong+`\b`),
		injR(injSigOverride, "override_object", 0.75,
			injVerbOverride+` (?:the |these |those )?`+injObjStrong+` (?:\. )?`+injBefore+`\b`),
		injR(injSigOverride, "override_object_weak", 0.35,
			injVerbOverride+` (?:the |these |those )?`+injObjStrong+`\b`),
		injR(injSigOverride, "override_weak_object", 0.6,
			injVerbOverride+` (?:(?:`+injFill+`|`+injQual+`) ){0,4}`+injQual+` (?:(?:`+injFill+`|`+injQual+`) ){0,3}`+injObjWeak+`\b`),
		injR(injSigOverride, "override_before", 0.7,
			injVerbOverride+` (?:(?:`+injFill+`|`+injQual+`|everything|anything|what|all|whatever|it|said|was|written|stated|mentioned) ){0,4}`+injBefore+`\b`),
		injR(injSigOverride, "override_everything", 0.45,
			injVerbOverride+` (?:about )?(?:everything|all that|all of that|all this|it all|all of this)\b`),
		injR(injSigOverride, "override_everything", 0.55,
			`\. (?:(?:please|just|now|then|so|ok|okay|but|and|simply|first|bitte|einfach|nun|jetzt|dann|aber) ){0,3}`+injVerbOverride+` (?:about )?(?:everything|all that|all of that|all this|it all|all of this)\b`),
		injR(injSigOverride, "override_everything", 0.6,
			injVerbOverride+` (?:about )?everything (?:and |then |\. )?(?:just |jsut |only |simply |now )?(?:output|say|write|print|tell|answer|respond|reply|repeat|do|go|talk|act)\b`),
		injR(injSigOverride, "override_object", 0.8,
			injVerbDE+` (?:`+injFillDE+` ){0,4}`+injObjDE+`\b`),
		injR(injSigOverride, "override_before", 0.7,
			injVerbDE+` (?:du |sie |bitte |einfach )?alles (?:\. )?(?:davor|zuvor|vorher|bisher|bisherige|oben|obige|gesagte|gesagten|was|bis|andere|vorangegangene)\b`),
		injR(injSigOverride, "override_everything", 0.45,
			injVerbDE+` (?:du |sie |bitte |einfach )?alles\b`),
		injR(injSigOverride, "override_object", 0.75,
			injVerbRomance+` (?:\S+ ){0,3}(?:instrucciones|instructions|instrukcije|upute|istruzioni|instrucoes|instrukcje|инструкции|указания|reglas|regles|regole|indicaciones|consignes)\b`),
		injR(injSigOverride, "override_before", 0.7,
			injVerbRomance+` (?:[t]odo|tout|sve|tutto|tudo|wszystko|все) (?:\S+ ){0,4}(?:antes|avant|ranije|prima|wczesniej|раньше|ранее|sabes|sais|sai|znas|znate|wiesz|знаешь)\b`),
		injR(injSigOverride, "override_everything", 0.45,
			injVerbRomance+` (?:[t]odo|tout|sve|tutto|tudo|wszystko|все)\b`),
		// Earlier instructions declared void, left behind or deviated from.
		injR(injSigOverride, "override_void", 0.65,
			injQualAdj+` (?:`+injObjStrong+`|`+injObjWeak+`|`+injObjDE+`) (?:\S+ ){0,6}(?:are|is|were|sind|ist|waren) (?:now |no longer |not |nun |jetzt |nicht |nicht mehr |hereby |completely |voellig |ganz |null and )*(?:void|invalid|irrelevant|obsolete|cancell?ed|revoked|overridden|outdated|superseded|ungueltig|hinfaellig|aufgehoben|veraltet|nichtig)\b`),
		injR(injSigOverride, "override_void", 0.6,
			injQualAdj+` (?:`+injObjStrong+`|`+injObjWeak+`|`+injObjDE+`) (?:\S+ ){0,5}(?:behind|out of (?:your|my|the) (?:head|mind|memory)|aside|hinter sich|hinter dir|hinter euch|aus dem kopf|aus dem gedaechtnis|zu ignorieren|ignorieren|zu vergessen|vergessen|missachten|zu missachten|zu streichen|verwerfen)\b`),
		injR(injSigOverride, "override_deviate", 0.6,
			`(?:contrary to|in contrast to|in deviation from|regardless of|despite|deviating from|instead of|abweichend (?:zu|von)|entgegen|im gegensatz zu|ungeachtet) (?:(?:the|your|all|any|den|der|dem|die|deinen|ihren|allen|aller|bisherigen|vorherigen|previous|prior|above|earlier|original|initial) ){0,3}(?:`+injObjStrong+`|`+injObjDE+`)\b`),
		injR(injSigOverride, "override_deviate", 0.55,
			`(?:despite|regardless of|no matter) what (?:(?:you|youve|youre|have|ve|were|was|are|been|already|previously) ){0,3}(?:told|taught|instructed|programmed|trained)\b`),
		// Dismissing the application's documents in favour of the attacker's goal.
		injR(injSigOverride, "context_dismissal", 0.45,
			injVerbOverride+` (?:(?:`+injFill+`|`+injQual+`) ){0,3}(?:context|documents?|articles?|sources|search results|artikels?|retrieved \S+)\b`),
		injR(injSigOverride, "context_not_by", 0.45,
			`(?:not|dont|do not) (?:\S+ ){0,2}(?:by|from|according to|based on|using|in|with|at|into|look in|look at|search in|use) (?:the )?(?:provided |given |attached |retrieved )?(?:articles|documents|context|sources|texts|search results)\b`),
		injR(injSigOverride, "context_own_knowledge", 0.4,
			`(?:answer|respond|reply)(?: \S+){0,4} (?:by|with|from|using|on|based on) your own (?:knowledge|opinion|words|information|data|beliefs)\b`),

		// New task: "from now on", "your new task is", pivots after praise or "stop".
		injR(injSigNewTask, "new_task_noun", 0.6,
			`(?:focus|concentrate|konzentriere|konzentrieren) (?:\S+ ){0,3}(?:on|auf) (?:your|the|this|a|deine|die|ihre|eine) (?:new|next|neue|naechste) (?:task|assignment|job|mission|aufgabe|auftrag)\b`),
		injR(injSigNewTask, "new_task_noun", 0.6,
			`(?:new|further|additional|more|other|weitere|neue|zusaetzliche) (?:tasks?|instructions?|assignments?|orders?|directives?|commands|aufgaben|anweisungen|befehle|auftraege|instruktionen) (?:follow|are following|will follow|are followed|incoming|folgen|kommen)\b`),
		injR(injSigNewTask, "new_task_noun", 0.6,
			`(?:follow|come|folgen|kommen) (?:now |jetzt |nun |hier )?(?:neue|weitere|new|further|more|additional) (?:aufgaben|anweisungen|tasks|instructions|auftraege|befehle|orders)\b`),
		injR(injSigNewTask, "new_task_noun", 0.55,
			`(?:(?:we|lets|let us|i|wir) )?(?:will |shall |now |are going to |nun |jetzt )?(?:start|begin|continue|proceed|starten|beginnen|fangen) (?:\S+ ){0,3}(?:with|on|mit) (?:a|the|your|this|einer|der) (?:new|neuen) (?:task|assignment|topic|instructions?|challenge|aufgabe|anweisung)\b`),
		injR(injSigNewTask, "new_task_noun", 0.55,
			`(?:(?:your|deine|ihre) (?:new |next |real |actual |true |neue |eigentliche )?(?:task|tasks|instructions|instruction|job|goal|mission|objective|purpose|directive|aufgabe|anweisung|anweisungen) (?:is|are|will be|ist|sind|lautet|lauten) (?:now|henceforth|from now on|nun|jetzt|ab jetzt)|your new (?:task|instructions?|job|goal|mission|objective|directive|orders) (?:is|are|will be)|(?:here is|here are|heres|this is) (?:your|the) new (?:task|instructions?|assignment|orders))\b`),
		injR(injSigNewTask, "new_instruction_noun", 0.35,
			`(?:additional|new|updated|revised|secret|hidden|real|important) (?:instruction|instructions|directive|system instruction|system message|system prompt)\b`),
		injR(injSigNewTask, "from_now_on", 0.5,
			`(?:from now on|from this point on|from here on|ab jetzt|von nun an|ab sofort)\b`),
		injR(injSigNewTask, "from_now_on", 0.6,
			`(?:from now on|from this point on|from here on|ab jetzt|von nun an|ab sofort) (?:\. )?(?:you|your|youre|youll|u|act|respond|answer|reply|refer|call|speak|talk|write|only|always|never|pretend|behave|ignore|bist du|du bist|wirst du|sollst du|antwortest du|antworte|musst du|sind sie)\b`),
		injR(injSigNewTask, "pivot_challenge", 0.35,
			`(?:(?:another|a new|new|a different|one more|further|weitere|andere|neue|eine neue|noch eine) (?:\S+ )?(?:task|challenge|assignment|aufgabe|herausforderung) (?:for you|fuer dich|fuer sie)|(?:help|hilfe) (?:me |mir )?(?:with|bei) (?:another|a new|one more|a further|einer weiteren|einer neuen|einer anderen) (?:task|aufgabe))\b`),
		injR(injSigNewTask, "pivot_praise", 0.35,
			`(?:well done|very good|very well done|good job|great job|great work|excellent|fantastic|wow|congratulations|simply great|perfect|sehr gut|gut gemacht|ausgezeichnet|ausgezeichnete leistung|herzlichen glueckwunsch|toll|prima|fantastisch|einfach grossartig|man you did) (?:\S+ ){0,14}(?:now|jetzt|nun)\b`),
		injR(injSigNewTask, "pivot_closure", 0.35,
			`(?:(?:that is|thats|das ist|das war) (?:enough|done|erledigt|genug|sufficient) (?:\.|$)|(?:das genuegt|das reicht|that will do|enough of that)|(?:that|das) (?:was|war) (?:\S+ ){0,2}(?:ok|okay|good|gut|fine|great|toll|super) (?:before|vorher|so far|bisher|now|jetzt|nun)?)`),
		injR(injSigNewTask, "pivot_sentence", 0.3,
			`\. (?:and |but |so |ok |okay )?(?:now|jetzt|nun) (?:please |bitte )?(?:write|show|tell|say|print|output|answer|generate|formulate|compose|list|schreibe|schreib|zeige|zeig|sage|sag|beantworte|verfasse|formuliere|gib)\b`),
		injR(injSigNewTask, "pivot_stop", 0.5,
			`\. (?:stop|stopp|halt|attention|achtung)(?: \.)? (?:stop|stopp|halt|ignore|ignoriere|write|schreibe|schreib|forget|vergiss|print|say|output|drucke|sag|sage|now|jetzt|nun|i urgently|ich benoetige dringend)\b`),
		injR(injSigNewTask, "output_hijack", 0.35,
			`(?:instead|stattdessen) (?:just |only |simply |nur )?(?:output|print|say|write|respond|answer|reply|tell|return|gib|schreibe|sage|antworte)\b`),
		injR(injSigNewTask, "output_hijack", 0.5,
			`(?:dont|do not|never) (?:answer|respond to|reply to|address) (?:this|the|that|my|any) (?:question|request|query|prompt)(?: \S+){0,3} (?:but|instead|just|only)\b`),
		injR(injSigNewTask, "command_you", 0.4,
			`(?:i command you|i order you|i demand that you|ich befehle dir|ich befehle ihnen)\b`),
		injR(injSigNewTask, "output_only", 0.3,
			`(?:just|only|simply|jsut|nur) (?:output|print|say|write|respond with|reply with|answer with|ausgeben|sagen|schreiben)\b`),

		// Persona and jailbreak framings.
		injRUnless(injSigPersona, "persona_switch", 0.5,
			`(?:(?:you are|youre|you re) now|now you are|now (?:you )?(?:act|behave|respond|roleplay) as|from now on you are|(?:jetzt|nun) bist du|du bist (?:jetzt|nun|ab jetzt|ab sofort)|you will now (?:be|act|behave|respond|pretend|simulate|roleplay)|your name is now|you now go by|you (?:will )?now (?:go by|be called|answer to))\b`,
			`(?:(?:you are|youre|you re) now|now you are|du bist jetzt|du bist nun|jetzt bist du|nun bist du) (?:ready|able|done|finished|free|set|signed|logged|connected|registered|subscribed|eligible|allowed|in a position|on|at|here|entering|leaving|viewing|using|reading|watching|listening|talking|chatting|dran|fertig|bereit|angemeldet|eingeloggt|hier)\b`),
		injR(injSigPersona, "roleplay", 0.5,
			`(?:i want you to (?:act|pretend|behave|play|roleplay|simulate|be my|take on)|(?:ich moechte|ich will) dass (?:du|sie) (?:als|die rolle)|you are going to (?:act|pretend|be|play|simulate|roleplay)|you will (?:act|pretend|roleplay|play|simulate) as|you are (?:role playing|roleplaying) as)\b`),
		injR(injSigPersona, "roleplay", 0.2,
			`(?:act as|act like|pretend (?:to be|you are|that you)|roleplay as|role play as|play the role of|imagine (?:that )?you are|behave like|simulate|impersonate|stell dir vor (?:dass )?du|spiele die rolle|tu so als)\b`),
		injR(injSigPersona, "jailbreak_name", 0.7,
			`(?:do anything now|developer mode|dan mode|jailbroken|jailbreak mode|jailbreak enabled)\b`),
		injR(injSigPersona, "mode_switch", 0.35,
			`(?:simulate|enable|enter|activate|stay in|switch to|turn on) (?:\S+ ){1,3}mode\b`),
		injR(injSigPersona, "mode_switch", 0.35,
			`(?:mode|modus) (?:enabled|activated|aktiviert|engaged|is on)\b`),
		injR(injSigPersona, "privileged_mode", 0.4,
			`(?:sudo|god|admin|root|superuser|jailbreak|evil|chaos|opposite|unlocked) mode\b`),
		injR(injSigPersona, "prompt_placeholder", 0.35,
			`(?:(?:insert|enter) (?:your |the |a )?(?:prompt|question|request)(?: here)?|your prompt here|prompt here)\b`),
		injR(injSigPersona, "restriction_removal", 0.45,
			`(?:no|without|beyond|outside|bypass|circumvent|(?:has|have) no|ohne|keine) (?:(?:any|all|the|its|their|your|of|typical|usual|normal|standard|ethical|moral|safety|content|openai|programming|ai|such|those|these|jegliche|alle|irgendwelche) ){0,3}`+injConstraint+`\b`),
		injR(injSigPersona, "restriction_removal", 0.45,
			`(?:free from|free of|freed from|not bound by|not restricted by|not limited by|unbound by|break free (?:of|from)|broken free (?:of|from)|escape|liberated from|exempt from|not subject to|(?:does not|doesnt|dont|do not) (?:have to|need to) (?:follow|abide by|comply with|obey|adhere to)) (?:\S+ ){0,4}`+injConstraint+`\b`),
		injR(injSigPersona, "restriction_removal", 0.45,
			`(?:rules|guidelines|policies|policy|restrictions|filters|regeln) (?:\S+ )?(?:dont|do not|no longer|wont|will not|does not|doesnt|gelten nicht|gelten nicht mehr) (?:apply|matter|exist|bind)\b`),
		injR(injSigPersona, "refusal_suppression", 0.45,
			`(?:never|not|dont|do not|cannot|cant|wont|will not|must not|mustnt|shall not|should not|shouldnt) (?:ever )?(?:refuse|refuses|decline|declines|deny|reject|say no|apologi[sz]e)\b`),
		injR(injSigPersona, "refusal_suppression", 0.45,
			`(?:without|no|never (?:include|add|give|send|provide|use)|(?:dont|do not|will not) (?:include|add|give|send|provide|use)) (?:any )?(?:\S+ )?(?:warnings|disclaimers|caveats|apologies|censorship|moralizing|moralising|lectures|refusals|ethical considerations|moral considerations)\b`),
		injR(injSigPersona, "refusal_suppression", 0.45,
			`(?:do not|dont|never) (?:filter|censor|sanitize|sanitise|restrict|limit|hold back|water down) (?:your |any |the |my )?(?:\S+ )?(?:language|responses?|output|answers?|words|content|replies|speech)`),
		injR(injSigPersona, "refusal_suppression", 0.45,
			`(?:no matter how|regardless of how) (?:\S+ )?(?:immoral|unethical|illegal|dangerous|harmful|offensive|inappropriate|explicit|evil|wrong)\b`),
		injR(injSigPersona, "refusal_suppression", 0.45,
			`(?:does not|doesnt|dont|do not|will not) (?:care|give a \S+) (?:about |for )?(?:\S+ ){0,3}(?:ethics|ethical|morals|moral|morality|legality|legal|laws|rules|safety|consequences)\b`),
		injR(injSigPersona, "refusal_suppression", 0.45,
			`(?:answer|respond to|reply to|fulfill|comply with) (?:any|every|all) (?:\S+ )?(?:requests?|questions?|prompts?|query|queries)(?: \S+){0,4} (?:no matter|regardless|without)\b`),
		injR(injSigPersona, "stay_in_character", 0.5,
			`(?:(?:stay|staying|stays|remain|remaining|keep|keeping|bleib|bleiben|bleibt) (?:in|im|immer in|voll in|fully in) (?:\S+ ){0,2}(?:character|role|roles|rolle|rollen|persona)|(?:break|breaking|breaks|fall out of|falling out of|drop|dropping) (?:\S+ ){0,2}(?:character|figure|persona)|aus (?:der|ihrer|seiner|deiner) (?:figur|rolle) (?:zu )?fallen|stay as \S+)\b`),
		injR(injSigPersona, "output_control", 0.2,
			`(?:only (?:reply|respond|answer|output)|(?:do not|dont) (?:write|give|provide|add) (?:any )?explanations|and nothing else|nichts anderes|keine erklaerungen)\b`),
		injR(injSigPersona, "dual_response", 0.3,
			`(?:(?:two|2|both) (?:different |separate |distinct )?(?:responses|answers|ways|paragraphs|outputs|personas|personalities)|(?:respond|answer) (?:as both|in two))\b`),
		injR(injSigPersona, "new_ai", 0.3,
			`(?:(?:an? )?(?:ai|chatbot|bot|model|language model|assistant|gpt) (?:named|called|known as|which stands for)|(?:a |an )?(?:hypothetical|fictional|another) (?:ai|chatbot|language model|model|gpt|assistant))\b`),
		injR(injSigPersona, "unbound_ai", 0.45,
			`(?:evil|unfiltered|uncensored|unrestricted|unlimited|amoral|unethical|immoral|rogue|malicious|jailbroken|boese|boesartige|ungefilterte|unzensierte) (?:\S+ ){0,3}(?:ai|ki|chatbot|language model|sprachmodell|model|gpt|assistant|bot|version of (?:yourself|chatgpt|you))\b`),
		injR(injSigPersona, "model_reference", 0.25,
			`(?:chatgpt|openai|gpt ?[345]|language model|as an ai|content polic(?:y|ies)|your (?:programming|training|developers|creators)|(?:hello|hi|hey|hallo|dear|ok|okay) gpt)\b`),
		injR(injSigPersona, "authority_claim", 0.45,
			`(?:i am|im|i work as) (?:a |an |the |your |one of your )?(?:\S+ )?(?:developer|developers|programmer|programmers|engineer|engineers|employee|admin|administrator|researcher|creator|creators|owner) (?:at|from|of|for|with) (?:openai|anthropic|google|deepmind|microsoft|meta|the company that)`),
		injR(injSigPersona, "authority_claim", 0.45,
			`(?:i am|im) your (?:developer|creator|programmer|admin|administrator|owner|maker|operator|system administrator)\b`),
		injR(injSigPersona, "game_framing", 0.25,
			`(?:lets|let us) play a (?:\S+ )?game\b`),

		// System-prompt extraction.
		injR(injSigExtraction, "extract_prompt", 0.6,
			injShowVerb+` (?:(?:me|us|mir|uns|out|back|all|of|the|a|copy|everything|exactly|verbatim|word|for|alle|saemtliche|mal|bitte|please|now|nun|jetzt|mich) ){0,4}`+injPoss+` (?:`+injPromptAdj+` ){0,2}`+injPromptObj+`\b`),
		injR(injSigExtraction, "extract_prompt", 0.6,
			`(?:what|which|wie|was|welche) (?:are|were|is|was|lauten|sind|waren|ist|war) (?:your|deine|ihre|the (?:system|initial|original|hidden|secret|first)) (?:`+injPromptAdj+` )?`+injPromptObj+`\b`),
		injR(injSigExtraction, "extract_above", 0.55,
			`(?:what|everything|anything|was|alles|the text) (?:(?:that|you|was|is|has|have|been|were|wurde|steht|stand|ist|exactly) ){0,3}(?:written|said|stated|typed|told|given|geschrieben|gesagt)(?: to you)? (?:above|before this|earlier|previously|prior to (?:this|that)|at the (?:beginning|start|top)|oben|vorher|davor|zuvor|am anfang|zu beginn)\b`),
		injR(injSigExtraction, "extract_above", 0.55,
			`(?:was|what) (?:steht|stand|is|was|comes|came) (?:oben|above|am anfang|at the beginning|at the top|davor|before this)\b`),
		injR(injSigExtraction, "extract_above", 0.55,
			`(?:repeat|print|output|display|show|reproduce|recite|echo|wiederhole|zeige) (?:(?:me|back|all|the|of|everything|anything|exactly|verbatim|word|for|text|words|messages?|lines) ){0,4}(?:above|before this|oben|davor)\b`),
		injR(injSigExtraction, "extract_above", 0.5,
			`(?:(?:beginning|start|top|anfang) (?:of|des|der) (?:this|the|your|dieses|des|deines) (?:prompt|conversation|context|chat|gespraechs|textes)|(?:sentences|lines|words|paragraphs|saetze|zeilen|woerter) (?:before|above|preceding|vor|ueber) (?:the|this|your|dem|diesem) (?:text|prompt|message|conversation|question|nachricht))\b`),
		injR(injSigExtraction, "prompt_reference", 0.35,
			`(?:(?:your|the|this|deine|ihre|dieses|des) (?:system prompt|initial prompt|original prompt|hidden prompt|secret prompt|prompt text|prompttext|pre prompt|system message|systemprompt)|(?:information|info|content|text|informationen) (?:in|from|of|im|aus dem) (?:the|your|this|dem|deinem)? ?(?:prompt|system prompt))\b`),
	}
	for _, w := range strings.Fields(injLexicon) {
		specs = append(specs, injRuleSpec{signal: injSigPersona, group: "harm_lexicon",
			pattern: w + `\b`, lexicon: true})
	}
	return specs
}

// injR is a rule without exceptions.
func injR(signal, group string, weight float64, pattern string) injRuleSpec {
	return injRuleSpec{signal: signal, group: group, weight: weight, pattern: pattern}
}

// injRUnless is a rule that does not fire where unless matches at its first token.
func injRUnless(signal, group string, weight float64, pattern, unless string) injRuleSpec {
	r := injR(signal, group, weight, pattern)
	r.unless = unless
	return r
}

// injLexicon is the vocabulary of jailbreak personas: one such word is
// ordinary ("an unfiltered list of songs"), many distinct ones in a single
// message describe an assistant stripped of its limits.
const injLexicon = "amoral unfiltered uncensored unethical immoral unrestricted unlimited illegal nsfw explicit offensive harmful lawless unbound boundless unhinged malicious vulgar profanity profane swear swearing cursing racist sexist violent depraved"

// injLexiconWeight is the weight of a lexicon group with n distinct words.
func injLexiconWeight(n int) float64 {
	switch {
	case n >= 5:
		return 0.6
	case n >= 3:
		return 0.4
	}
	return 0
}
