/**
 * MMLU's 57 subjects and the four categories its authors group them into (Hendrycks et al. 2021; the
 * same grouping NLP-Core-Team's mmlu_ru and llmtf use), for the per-subject, per-category accuracy of
 * Darumeru's MMLU sets (metrics/subjectAccuracy.ts).
 */
export const MMLU_CATEGORIES: Readonly<Record<string, readonly string[]>> = {
  STEM: [
    'abstract_algebra', 'astronomy', 'college_biology', 'college_chemistry', 'college_computer_science', 'college_mathematics',
    'college_physics', 'computer_security', 'conceptual_physics', 'electrical_engineering', 'elementary_mathematics',
    'high_school_biology', 'high_school_chemistry', 'high_school_computer_science', 'high_school_mathematics',
    'high_school_physics', 'high_school_statistics', 'machine_learning',
  ],
  humanities: [
    'formal_logic', 'high_school_european_history', 'high_school_us_history', 'high_school_world_history', 'international_law',
    'jurisprudence', 'logical_fallacies', 'moral_disputes', 'moral_scenarios', 'philosophy', 'prehistory', 'professional_law',
    'world_religions',
  ],
  'social sciences': [
    'econometrics', 'high_school_geography', 'high_school_government_and_politics', 'high_school_macroeconomics',
    'high_school_microeconomics', 'high_school_psychology', 'human_sexuality', 'professional_psychology', 'public_relations',
    'security_studies', 'sociology', 'us_foreign_policy',
  ],
  other: [
    'anatomy', 'business_ethics', 'clinical_knowledge', 'college_medicine', 'global_facts', 'human_aging', 'management',
    'marketing', 'medical_genetics', 'miscellaneous', 'nutrition', 'professional_accounting', 'professional_medicine', 'virology',
  ],
};

const SUBJECT_CATEGORY = new Map(Object.entries(MMLU_CATEGORIES).flatMap(([c, subjects]) => subjects.map((s) => [s, c] as const)));

/** The category of an MMLU subject (`college_physics` → `STEM`), or undefined for an unknown subject. */
export function mmluCategory(subject: string): string | undefined {
  return SUBJECT_CATEGORY.get(subject);
}

/**
 * Subject names for the headline of the Russian MMLU prompt ("… по анатомии."), in the dative case the
 * headline needs; from NLP-Core-Team's mmlu_ru (the MMLU-ru set of Darumeru).
 */
export const MMLU_SUBJECTS_RU: Readonly<Record<string, string>> = {
  abstract_algebra: 'абстрактной алгебре', anatomy: 'анатомии', astronomy: 'астрономии', business_ethics: 'деловой этике',
  clinical_knowledge: 'медицинским знаниям', college_biology: 'биологии в вузе', college_chemistry: 'химии в вузе',
  college_computer_science: 'компьютерным наукам в вузе', college_mathematics: 'математике в вузе', college_medicine: 'медицине в вузе',
  college_physics: 'физике в вузе', computer_security: 'компьютерной безопасности', conceptual_physics: 'теоретической физике',
  econometrics: 'эконометрике', electrical_engineering: 'электротехнике', elementary_mathematics: 'элементарной математике',
  formal_logic: 'формальной логике', global_facts: 'фактам о мире', high_school_biology: 'биологии в старшей школе',
  high_school_chemistry: 'химии в старшей школе', high_school_computer_science: 'информатике в старшей школе',
  high_school_european_history: 'истории Европы в старшей школе', high_school_geography: 'географии в старшей школе',
  high_school_government_and_politics: 'государству и политике в старшей школе', high_school_macroeconomics: 'макроэкономике в старшей школе',
  high_school_mathematics: 'математике в старшей школе', high_school_microeconomics: 'микроэкономике в старшей школе',
  high_school_physics: 'физике в старшей школе', high_school_psychology: 'психологии в старшей школе',
  high_school_statistics: 'статистике в старшей школе', high_school_us_history: 'истории США в старшей школе',
  high_school_world_history: 'всемирной истории в старшей школе', human_aging: 'старению человека',
  human_sexuality: 'человеческой сексуальности', international_law: 'международному праву', jurisprudence: 'юриспруденции',
  logical_fallacies: 'логическим ошибкам', machine_learning: 'машинному обучению', management: 'менеджменту', marketing: 'маркетингу',
  medical_genetics: 'медицинской генетике', miscellaneous: 'разным темам', moral_disputes: 'нравственным спорам',
  moral_scenarios: 'нравственным сценариям', nutrition: 'правильному питанию', philosophy: 'философии', prehistory: 'доисторической эпохе',
  professional_accounting: 'профессиональному бухгалтерскому учету', professional_law: 'профессиональному праву',
  professional_medicine: 'профессиональной медицине', professional_psychology: 'профессиональной психологии',
  public_relations: 'связям с общественностью', security_studies: 'исследованиям в области безопасности', sociology: 'социологии',
  us_foreign_policy: 'внешней политике США', virology: 'вирусологии', world_religions: 'мировым религиям',
};
